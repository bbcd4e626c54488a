// Package ovf reads the metadata of an OVF package: the XML descriptor
// (.ovf, versions 0.9, 1.x and 2.x), the manifest (.mf) and the signing
// certificate (.cert), and it vets tar headers of an OVA archive.
//
// It is the policy-free wire layer under pkg/imaging's OVA reader and
// deliberately imports no other project package. Everything it accepts is
// bounded: descriptors are limited in size and nesting, DOCTYPEs (and with
// them entity expansion) are refused, capacities are checked for overflow
// against a caller-supplied ceiling, file references must stay inside the
// package, and tar members must be plain regular files.
//
// A certificate is only parsed and its signature over the manifest can be
// checked against the certificate's own public key; it is never verified
// against a trust store, so it proves integrity, not origin.
package ovf

import "errors"

// Sentinel errors; every error returned by this package wraps one of them.
var (
	// ErrMalformed: the input is not a well-formed descriptor, manifest,
	// certificate or the references inside it do not resolve.
	ErrMalformed = errors.New("malformed ovf package")
	// ErrUnsupported: well-formed, but uses a feature this package does not
	// implement (remote hrefs, unknown compression, parent disks...).
	ErrUnsupported = errors.New("unsupported ovf feature")
	// ErrRefused: the input is hostile or unsafe (DOCTYPE, path escape,
	// symlink member, device member...).
	ErrRefused = errors.New("ovf package refused")
	// ErrTooLarge: a size or capacity exceeds a limit or overflows int64.
	ErrTooLarge = errors.New("ovf value too large")
	// ErrNoDisk: SelectDisk found no disk matching the selector.
	ErrNoDisk = errors.New("no such disk in ovf descriptor")
	// ErrSkip is returned by CheckTarHeader for harmless members that carry
	// no file (directories, pax global headers): skip them and go on.
	ErrSkip = errors.New("skip tar member")
)

// Package ipxe embeds the iPXE network boot binaries that metald serves over
// TFTP and HTTP. The files come unmodified from Debian's ipxe package; see
// README.md for their origin, version, checksums and how to refresh them.
package ipxe

import (
	"embed"
	"io/fs"
)

//go:embed undionly.kpxe snponly.efi ipxe.efi
var files embed.FS

// Version is the Debian ipxe package version the embedded binaries come from.
const Version = "1.0.0+git-20190125.36a4c85-5.1"

// Names of the embedded binaries.
const (
	// BIOS is the chainloadable iPXE for legacy BIOS PXE ROMs (uses the
	// ROM's UNDI driver).
	BIOS = "undionly.kpxe"
	// UEFI is the full iPXE for x86-64 UEFI with its own NIC drivers.
	UEFI = "ipxe.efi"
	// UEFISNP is the x86-64 UEFI iPXE that uses the firmware's SNP driver.
	UEFISNP = "snponly.efi"
)

// FS returns the embedded binaries as a flat read-only file system.
func FS() fs.FS { return files }

// Names lists the embedded binaries.
func Names() []string { return []string{BIOS, UEFISNP, UEFI} }

package ovf

import (
	"archive/tar"
	"fmt"
	"strings"
)

// DefaultMaxMemberSize bounds one OVA member (64 TiB plus format overhead).
const DefaultMaxMemberSize int64 = 65 << 40

// CheckTarHeader vets one OVA member with DefaultMaxMemberSize. See
// CheckTarHeaderMax.
func CheckTarHeader(h *tar.Header) error {
	return CheckTarHeaderMax(h, DefaultMaxMemberSize)
}

// CheckTarHeaderMax vets one OVA member before anything of it is read.
//
// It returns nil only for a regular file (typeflag '0' or the old '\x00')
// whose name is a clean relative path (a leading "./" is tolerated; compare
// names through MemberName) no larger than maxSize. Directories and pax
// global headers carry no data: for them it returns ErrSkip if their name
// is safe, so a reader can `continue`. Everything else is refused with
// ErrRefused: symlinks, hard links, character and block devices, FIFOs,
// GNU sparse files and unknown types, as well as absolute names, ".."
// components, NUL or control characters, backslashes, and negative or
// oversized sizes. (Per-file pax records are consumed by archive/tar
// itself and never reach here.)
func CheckTarHeaderMax(h *tar.Header, maxSize int64) error {
	if h == nil {
		return fmt.Errorf("%w: nil tar header", ErrMalformed)
	}
	switch h.Typeflag {
	case tar.TypeXGlobalHeader:
		return ErrSkip
	case tar.TypeReg, tar.TypeRegA:
	case tar.TypeDir:
	case tar.TypeSymlink:
		return fmt.Errorf("%w: member %q is a symbolic link to %q", ErrRefused, h.Name, h.Linkname)
	case tar.TypeLink:
		return fmt.Errorf("%w: member %q is a hard link to %q", ErrRefused, h.Name, h.Linkname)
	case tar.TypeChar, tar.TypeBlock:
		return fmt.Errorf("%w: member %q is a device node", ErrRefused, h.Name)
	case tar.TypeFifo:
		return fmt.Errorf("%w: member %q is a FIFO", ErrRefused, h.Name)
	case tar.TypeGNUSparse:
		return fmt.Errorf("%w: member %q is a GNU sparse file", ErrRefused, h.Name)
	default:
		return fmt.Errorf("%w: member %q has tar type %q", ErrRefused, h.Name, h.Typeflag)
	}
	name := MemberName(h)
	if name == "" || name == "." {
		if h.Typeflag == tar.TypeDir {
			return ErrSkip
		}
		return fmt.Errorf("%w: member with an empty name", ErrRefused)
	}
	if strings.ContainsRune(h.Name, 0) {
		return fmt.Errorf("%w: member name %q contains NUL", ErrRefused, h.Name)
	}
	if err := checkRelPath(name, "member name"); err != nil {
		return err
	}
	if h.Typeflag == tar.TypeDir {
		return ErrSkip
	}
	if h.Size < 0 {
		return fmt.Errorf("%w: member %q has negative size %d", ErrRefused, h.Name, h.Size)
	}
	if h.Size > maxSize {
		return fmt.Errorf("%w: member %q is %d bytes, more than the limit of %d", ErrTooLarge, h.Name, h.Size, maxSize)
	}
	return nil
}

// MemberName is the member's name as OVF hrefs spell it: without a
// leading "./" and without a trailing "/" (directories).
func MemberName(h *tar.Header) string {
	n := h.Name
	for strings.HasPrefix(n, "./") {
		n = n[2:]
	}
	return strings.TrimSuffix(n, "/")
}

package agentboot

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/metal-iaas/metal/internal/initramfs"
	"github.com/metal-iaas/metal/pkg/bootfs"
)

// Open opens "vmlinuz" or "initrd" exactly as /agent/* serves them (the
// initrd with the CA archive appended under TLS), with the size to send:
// the Secure Boot chain's GRUB loads them over TFTP. Other names, and
// missing files, wrap fs.ErrNotExist.
func (f *Files) Open(name string) (bootfs.File, int64, error) {
	if name != "vmlinuz" && name != "initrd" {
		return nil, 0, fmt.Errorf("agentboot: %q: %w", name, fs.ErrNotExist)
	}
	file, err := os.Open(filepath.Join(f.dir, name))
	if err != nil {
		return nil, 0, fmt.Errorf("agentboot: %w", err)
	}
	st, err := file.Stat()
	if err != nil || !st.Mode().IsRegular() {
		file.Close()
		return nil, 0, fmt.Errorf("agentboot: %s is not a regular file: %w", name, fs.ErrNotExist)
	}
	if name == "vmlinuz" || f.overlay == nil {
		return file, st.Size(), nil
	}
	tail := append(make([]byte, initramfs.Pad(st.Size())), f.overlay...)
	size := st.Size() + int64(len(tail))
	return withCloser{io.NewSectionReader(concat{file, st.Size(), tail}, 0, size), file}, size, nil
}

// withCloser is a ReadSeeker over a file that Close closes.
type withCloser struct {
	io.ReadSeeker
	c io.Closer
}

func (w withCloser) Close() error { return w.c.Close() }

// Package initramfs builds the stage-2 initramfs: a gzip'ed newc cpio
// archive holding the static agent as /init and the subset of a Debian
// kernel's modules that common server and VM hardware needs.
package initramfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// CPIOWriter writes a newc ("070701") cpio archive, the format the kernel
// unpacks as an initramfs. Entries get uid/gid 0 and mtime 0 so that the
// output depends only on the content. Parent directories are created
// implicitly, each once.
type CPIOWriter struct {
	w      io.Writer
	ino    uint32
	dirs   map[string]bool
	closed bool
}

// NewCPIOWriter returns a writer appending to w.
func NewCPIOWriter(w io.Writer) *CPIOWriter {
	return &CPIOWriter{w: w, ino: 1, dirs: map[string]bool{".": true, "": true}}
}

const (
	modeDir     = 0o040000
	modeFile    = 0o100000
	modeSymlink = 0o120000
	modeCharDev = 0o020000
)

func clean(name string) (string, error) {
	n := strings.TrimPrefix(path.Clean("/"+name), "/")
	if n == "" || n == "." {
		return "", fmt.Errorf("cpio: empty entry name %q", name)
	}
	return n, nil
}

func (c *CPIOWriter) header(name string, mode uint32, size int64, nlink uint32) error {
	return c.headerDev(name, mode, size, nlink, 0, 0)
}

func (c *CPIOWriter) headerDev(name string, mode uint32, size int64, nlink, rmajor, rminor uint32) error {
	if c.closed {
		return errors.New("cpio: write after close")
	}
	if size > 0xffffffff {
		return fmt.Errorf("cpio: %s is %d bytes, newc holds at most 4 GiB", name, size)
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, rmajor, rminor, len(name)+1, 0)
	c.ino++
	buf := make([]byte, 0, len(hdr)+len(name)+4)
	buf = append(buf, hdr...)
	buf = append(buf, name...)
	buf = append(buf, 0)
	buf = append(buf, make([]byte, pad4(len(buf)))...)
	_, err := c.w.Write(buf)
	return err
}

func pad4(n int) int { return (4 - n%4) % 4 }

func (c *CPIOWriter) parents(name string) error {
	d := path.Dir(name)
	if c.dirs[d] {
		return nil
	}
	if err := c.parents(d); err != nil {
		return err
	}
	c.dirs[d] = true
	return c.header(d, modeDir|0o755, 0, 2)
}

// Dir adds a directory.
func (c *CPIOWriter) Dir(name string, perm fs.FileMode) error {
	n, err := clean(name)
	if err != nil {
		return err
	}
	if c.dirs[n] {
		return nil
	}
	if err := c.parents(n); err != nil {
		return err
	}
	c.dirs[n] = true
	return c.header(n, modeDir|uint32(perm.Perm()), 0, 2)
}

// File adds a regular file of size bytes read from r.
func (c *CPIOWriter) File(name string, perm fs.FileMode, size int64, r io.Reader) error {
	n, err := clean(name)
	if err != nil {
		return err
	}
	if err := c.parents(n); err != nil {
		return err
	}
	if err := c.header(n, modeFile|uint32(perm.Perm()), size, 1); err != nil {
		return err
	}
	got, err := io.CopyN(c.w, r, size)
	if err != nil {
		return fmt.Errorf("cpio: %s: wrote %d of %d bytes: %w", n, got, size, err)
	}
	_, err = c.w.Write(make([]byte, pad4(int(size%4))))
	return err
}

// CharDev adds a character device node (e.g. dev/console 5:1, which the
// kernel opens for /init before anything is mounted).
func (c *CPIOWriter) CharDev(name string, perm fs.FileMode, major, minor uint32) error {
	n, err := clean(name)
	if err != nil {
		return err
	}
	if err := c.parents(n); err != nil {
		return err
	}
	return c.headerDev(n, modeCharDev|uint32(perm.Perm()), 0, 1, major, minor)
}

// Symlink adds a symbolic link name → target.
func (c *CPIOWriter) Symlink(name, target string) error {
	n, err := clean(name)
	if err != nil {
		return err
	}
	if err := c.parents(n); err != nil {
		return err
	}
	if err := c.header(n, modeSymlink|0o777, int64(len(target)), 1); err != nil {
		return err
	}
	_, err = io.WriteString(c.w, target+strings.Repeat("\x00", pad4(len(target))))
	return err
}

// Close writes the trailer. It does not close the underlying writer.
func (c *CPIOWriter) Close() error {
	if c.closed {
		return nil
	}
	err := c.header("TRAILER!!!", 0, 0, 1)
	c.closed = true
	return err
}

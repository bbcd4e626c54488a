package bootfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
	"time"
)

// ErrBadPath is returned for a request path that is not a plain relative
// path inside the served root.
var ErrBadPath = errors.New("bootfs: refused path")

// CleanPath turns a TFTP/HTTP file name into a slash-separated path
// relative to the root, or fails with ErrBadPath for anything that could
// escape it or is ambiguous: NUL and control bytes, backslashes, ".."
// elements, empty names. One leading "/" means the served root (GRUB asks
// for "/grub/grub.cfg" relative to its TFTP root): it is dropped, so
// "/etc/passwd" is the root's "etc/passwd", never the host's; a name
// still absolute after that ("//x") is refused.
func CleanPath(name string) (string, error) {
	name = strings.TrimPrefix(name, "/")
	switch {
	case name == "":
		return "", fmt.Errorf("%w: empty name", ErrBadPath)
	case len(name) > 255:
		return "", fmt.Errorf("%w: name longer than 255 bytes", ErrBadPath)
	case strings.HasPrefix(name, "/"):
		return "", fmt.Errorf("%w: absolute path %q", ErrBadPath, name)
	case strings.ContainsRune(name, '\\'):
		return "", fmt.Errorf("%w: backslash in %q", ErrBadPath, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("%w: control byte in %q", ErrBadPath, name)
		}
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return "", fmt.Errorf("%w: %q escapes the root", ErrBadPath, name)
		}
	}
	clean := path.Clean(name)
	if !fs.ValidPath(clean) || clean == "." {
		return "", fmt.Errorf("%w: %q", ErrBadPath, name)
	}
	return clean, nil
}

// Files serves read-only files from an optional directory (looked up
// first, so an operator can override a binary) and then from an embedded
// file system (the iPXE binaries).
type Files struct {
	root     *os.Root // nil if no directory
	embedded fs.FS
}

// NewFiles opens dir (may be "") over embedded. os.Root confines every
// lookup to dir, symlinks included.
func NewFiles(dir string, embedded fs.FS) (*Files, error) {
	f := &Files{embedded: embedded}
	if dir != "" {
		r, err := os.OpenRoot(dir)
		if err != nil {
			return nil, fmt.Errorf("bootfs: open file root: %w", err)
		}
		f.root = r
	}
	return f, nil
}

// Close releases the directory handle.
func (f *Files) Close() error {
	if f.root != nil {
		return f.root.Close()
	}
	return nil
}

// File is an open served file.
type File interface {
	io.ReadSeekCloser
}

// Open cleans name and opens it; the size is returned for tsize and
// Content-Length. Missing files wrap fs.ErrNotExist.
func (f *Files) Open(name string) (File, int64, error) {
	clean, err := CleanPath(name)
	if err != nil {
		return nil, 0, err
	}
	if f.root != nil {
		if fh, err := f.root.Open(clean); err == nil {
			st, err := fh.Stat()
			if err == nil && st.Mode().IsRegular() {
				return fh, st.Size(), nil
			}
			fh.Close()
		}
	}
	if f.embedded != nil {
		fh, err := f.embedded.Open(clean)
		if err == nil {
			st, err := fh.Stat()
			rs, ok := fh.(io.ReadSeekCloser)
			if err == nil && ok && st.Mode().IsRegular() {
				return rs, st.Size(), nil
			}
			fh.Close()
		}
	}
	return nil, 0, fmt.Errorf("bootfs: %s: %w", clean, fs.ErrNotExist)
}

// ServeHTTP-style helper: ServeFile writes name with http.ServeContent on
// the raw ResponseWriter (so net/http can use sendfile for *os.File and
// honour Range requests). Bad names get 400, missing ones 404.
func (f *Files) ServeFile(w http.ResponseWriter, r *http.Request, name string) {
	fh, _, err := f.Open(name)
	switch {
	case errors.Is(err, ErrBadPath):
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case err != nil:
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	defer fh.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, path.Base(name), time.Time{}, fh)
}

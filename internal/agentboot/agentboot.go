// Package agentboot serves the stage-2 agent's boot files, /agent/vmlinuz
// and /agent/initrd, from a directory. With TLS on, the initrd is served
// with a small archive appended that holds metald's CA at
// agentapi.CAFile, so the agent trusts metald's HTTPS certificate without
// rebuilding the initramfs; Linux unpacks concatenated archives in order.
package agentboot

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/metal-iaas/metal/internal/initramfs"
	"github.com/metal-iaas/metal/pkg/agentapi"
)

// Files are the agent's boot files.
type Files struct {
	dir     string
	overlay []byte // appended to the initrd; nil without a CA
}

// New serves the files in dir; caPEM, when set, is appended to the initrd.
// Missing files are logged, not fatal: machines cannot boot the agent until
// they exist.
func New(dir string, caPEM []byte, log *slog.Logger) (*Files, error) {
	f := &Files{dir: dir}
	if len(caPEM) > 0 {
		ov, err := initramfs.Overlay(map[string][]byte{strings.TrimPrefix(agentapi.CAFile, "/"): caPEM})
		if err != nil {
			return nil, fmt.Errorf("agentboot: %w", err)
		}
		f.overlay = ov
	}
	for _, name := range []string{"vmlinuz", "initrd"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			log.Warn("stage-2 agent file missing: machines cannot boot the agent until it exists (make agent)", "file", filepath.Join(dir, name))
		}
	}
	return f, nil
}

// Mount registers /agent/vmlinuz and /agent/initrd with mount (the
// server's Mount, which keeps sendfile for the kernel).
func (f *Files) Mount(mount func(prefix string, h http.Handler)) {
	mount("/agent/vmlinuz", http.HandlerFunc(f.serveKernel))
	mount("/agent/initrd", http.HandlerFunc(f.serveInitrd))
}

func (f *Files) serveKernel(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/agent/vmlinuz" {
		http.NotFound(w, r)
		return
	}
	http.ServeFile(w, r, filepath.Join(f.dir, "vmlinuz"))
}

func (f *Files) serveInitrd(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/agent/initrd" {
		http.NotFound(w, r)
		return
	}
	path := filepath.Join(f.dir, "initrd")
	if f.overlay == nil {
		http.ServeFile(w, r, path)
		return
	}
	file, err := os.Open(path)
	if err != nil {
		http.Error(w, "agent initrd missing", http.StatusNotFound)
		return
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil || !st.Mode().IsRegular() {
		http.Error(w, "agent initrd unreadable", http.StatusInternalServerError)
		return
	}
	tail := append(make([]byte, initramfs.Pad(st.Size())), f.overlay...)
	body := io.NewSectionReader(concat{file, st.Size(), tail}, 0, st.Size()+int64(len(tail)))
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "initrd", st.ModTime(), body)
}

// concat is the file's first size bytes followed by tail, as one
// io.ReaderAt.
type concat struct {
	file io.ReaderAt
	size int64
	tail []byte
}

func (c concat) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	if off < c.size {
		k := min(int64(len(p)), c.size-off)
		m, err := c.file.ReadAt(p[:k], off)
		n += m
		if err != nil && !(err == io.EOF && int64(m) == k) {
			return n, err
		}
		off += int64(m)
	}
	if n < len(p) {
		t := off - c.size
		if t >= int64(len(c.tail)) {
			return n, io.EOF
		}
		n += copy(p[n:], c.tail[t:])
		if n < len(p) {
			return n, io.EOF
		}
	}
	return n, nil
}

var _ io.ReaderAt = concat{file: bytes.NewReader(nil)}

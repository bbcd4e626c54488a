package bootfs

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// nopCloser is a bytes.Reader as a File.
type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// TestTFTPLeadingSlashAndDynamic: GRUB's absolute names ("/grub/grub.cfg")
// are served from the root, Dynamic answers first with the client's
// address, passes unknown names on to Files, and its refusals are TFTP
// errors counted as denied.
func TestTFTPLeadingSlashAndDynamic(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	dynamic := func(name string, remote netip.Addr) (File, int64, error) {
		mu.Lock()
		asked = append(asked, name+" "+remote.String())
		mu.Unlock()
		switch name {
		case "grub/grub.cfg":
			b := []byte("source $prefix/x\n")
			return nopCloser{bytes.NewReader(b)}, int64(len(b)), nil
		case "grub/secret":
			return nil, 0, fmt.Errorf("not from your address")
		}
		return nil, 0, fmt.Errorf("dynamic: %s: %w", name, fs.ErrNotExist)
	}
	fx := startTFTPWith(t, 1024, func(c *TFTPConfig) { c.Dynamic = dynamic })
	dir := t.TempDir()
	local := filepath.Join(dir, "out")
	for remote, want := range map[string]string{"/grub/grub.cfg": "source $prefix/x\n", "/sub/x.txt": "hello\n", "sub/x.txt": "hello\n"} {
		os.Remove(local)
		out, err := tftpHPA(t, fx.port, remote, local)
		if b, _ := os.ReadFile(local); err != nil || string(b) != want {
			t.Errorf("%s: got %q (%v %s), want %q", remote, b, err, out, want)
		}
	}
	os.Remove(local)
	if out, _ := tftpHPA(t, fx.port, "/grub/secret", local); !strings.Contains(strings.ToLower(out), "error") {
		t.Errorf("dynamic refusal not reported: %q", out)
	}
	if got := counter(fx.srv.m.refused.WithLabelValues("denied")); got != 1 {
		t.Errorf("denied refusals = %v, want 1", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) == 0 || !strings.HasSuffix(asked[0], " 127.0.0.1") {
		t.Errorf("Dynamic asked %q: want cleaned names with the client's address", asked)
	}
	for _, a := range asked {
		if strings.HasPrefix(a, "/") {
			t.Errorf("Dynamic got an uncleaned name %q", a)
		}
	}
}

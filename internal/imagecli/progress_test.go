package imagecli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns the master and slave ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Skipf("SKIPPED: no pseudo-terminal available: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// The progress bar appears on a terminal and nowhere else.
func TestConvertProgressOnlyOnTerminal(t *testing.T) {
	requireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	img, _ := imageCases[1].build(t, dir, makeRawDisk(t, dir)) // qcow2
	out := filepath.Join(dir, "out.raw")

	// Not a terminal: stderr stays empty.
	_, stderr, err := execute(t, NewConvertCmd(), nil, img, out)
	if err != nil || stderr != "" {
		t.Fatalf("err %v, stderr %q", err, stderr)
	}

	master, slave := openPTY(t)
	defer master.Close()
	var got bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&got, master); close(done) }()
	cmd := NewConvertCmd()
	var stdout bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(slave)
	cmd.SetArgs([]string{img, out})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		master.Close()
		<-done
	}
	if s := got.String(); !strings.Contains(s, "converting") || !strings.Contains(s, "100%") {
		t.Fatalf("no progress bar on the terminal: %q", s)
	}
	if strings.Contains(stdout.String(), "converting") {
		t.Fatal("progress bar went to stdout")
	}

	// --no-progress silences it even on a terminal.
	master2, slave2 := openPTY(t)
	defer master2.Close()
	defer slave2.Close()
	cmd = NewConvertCmd()
	cmd.SetOut(io.Discard)
	cmd.SetErr(slave2)
	cmd.SetArgs([]string{"--no-progress", img, out})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	master2.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 256)
	if n, _ := master2.Read(buf); n > 0 {
		t.Fatalf("--no-progress wrote %q", buf[:n])
	}
}

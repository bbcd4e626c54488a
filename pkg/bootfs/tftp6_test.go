package bootfs

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestTFTPOverIPv6 serves "[::1]:0" (which failed with "no suitable
// address" when the listener was IPv4 only) and fetches a file with curl
// and tftp-hpa over IPv6, as PXEv6 firmware fetches tftp://[addr]/file.
func TestTFTPOverIPv6(t *testing.T) {
	if c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err != nil {
		t.Skipf("no IPv6 loopback on this host: %v", err)
	} else {
		c.Close()
	}
	fx := startTFTPWith(t, 300<<10, func(c *TFTPConfig) { c.Addr = "[::1]:0" })
	dir := t.TempDir()
	requireTool(t, "curl", "curl")
	local := filepath.Join(dir, "big.curl")
	if out, err := exec.Command("curl", "-sS", "-g", "--max-time", "60", "-o", local, "tftp://[::1]:"+fx.port+"/big.bin").CombinedOutput(); err != nil {
		t.Fatalf("curl over IPv6: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(local); !bytes.Equal(got, fx.want(t, "big.bin")) {
		t.Fatalf("curl over IPv6: %d bytes differ from the source", len(got))
	}
	bin := requireTool(t, "tftp", "tftp-hpa")
	local = filepath.Join(dir, "undionly.hpa")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin, "-6", "-m", "binary", "::1", fx.port, "-c", "get", "undionly.kpxe", local).CombinedOutput(); err != nil {
		t.Fatalf("tftp-hpa -6: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(local); !bytes.Equal(got, fx.want(t, "undionly.kpxe")) {
		t.Fatalf("tftp-hpa over IPv6: %d bytes differ", len(got))
	}
}

// TestTFTPRunServesBothFamilies: an address without a host (":PORT")
// answers on 127.0.0.1 and on ::1.
func TestTFTPRunServesBothFamilies(t *testing.T) {
	if c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err != nil {
		t.Skipf("no IPv6 loopback on this host: %v", err)
	} else {
		c.Close()
	}
	probe, err := net.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(probe.LocalAddr().(*net.UDPAddr).Port)
	probe.Close()
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "x.txt"), []byte("hello\n"), 0o644)
	files, err := NewFiles(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer files.Close()
	srv, err := NewTFTPServer(TFTPConfig{Addr: ":" + port, Files: files, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	requireTool(t, "curl", "curl")
	for _, host := range []string{"127.0.0.1", "[::1]"} {
		var out []byte
		for try := 0; try < 20; try++ { // until Run has bound its sockets
			if out, err = exec.Command("curl", "-sS", "-g", "--max-time", "10", "tftp://"+host+":"+port+"/x.txt").CombinedOutput(); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil || string(out) != "hello\n" {
			t.Fatalf("curl %s: %v %q", host, err, out)
		}
	}
}

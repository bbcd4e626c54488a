package bootfs

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pin/tftp/v3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func requireTool(t *testing.T, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		msg := fmt.Sprintf("missing %s: apt-get install %s", tool, pkg)
		if os.Getenv("METAL_REQUIRE_ALL") == "1" {
			t.Fatalf("cannot run: %s (METAL_REQUIRE_ALL=1, so this is a failure)", msg)
		}
		t.Skipf("SKIPPED, cannot run: %s (set METAL_REQUIRE_ALL=1 to make this a failure)", msg)
	}
	return p
}

func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}

type tftpFixture struct {
	srv      *TFTPServer
	port     string
	root     string
	embedded fstest.MapFS
	sent     chan string
}

// startTFTP serves a root dir (holding a random file of bigSize bytes) over an
// embedded FS (holding a fake undionly.kpxe) on a loopback port.
func startTFTP(t *testing.T, bigSize int) *tftpFixture {
	t.Helper()
	return startTFTPWith(t, bigSize, nil)
}

// startTFTPWith is startTFTP with cfg changed by edit before the server
// starts.
func startTFTPWith(t *testing.T, bigSize int, edit func(*TFTPConfig)) *tftpFixture {
	t.Helper()
	fx := &tftpFixture{root: t.TempDir(), sent: make(chan string, 100)}
	small := make([]byte, 74213)
	rand.Read(small)
	fx.embedded = fstest.MapFS{"undionly.kpxe": {Data: small}}
	big := make([]byte, bigSize)
	rand.Read(big)
	if err := os.WriteFile(filepath.Join(fx.root, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(fx.root, "sub"), 0o755)
	os.WriteFile(filepath.Join(fx.root, "sub", "x.txt"), []byte("hello\n"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(fx.root, "escape"))
	files, err := NewFiles(fx.root, fx.embedded)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { files.Close() })
	cfg := TFTPConfig{Addr: "127.0.0.1:0", Files: files, Registerer: prometheus.NewRegistry(),
		OnSent: func(_ *net.UDPAddr, f string, _ int64) { fx.sent <- f }}
	if edit != nil {
		edit(&cfg)
	}
	fx.srv, err = NewTFTPServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := fx.srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	fx.port = strconv.Itoa(conn.LocalAddr().(*net.UDPAddr).Port)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fx.srv.Serve(ctx, conn) }()
	t.Cleanup(func() { cancel(); <-done })
	return fx
}

func (fx *tftpFixture) want(t *testing.T, name string) []byte {
	if name == "undionly.kpxe" {
		return fx.embedded[name].Data
	}
	b, err := os.ReadFile(filepath.Join(fx.root, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tftpHPA(t *testing.T, port, remote, local string, extra ...string) (string, error) {
	bin := requireTool(t, "tftp", "tftp-hpa")
	args := append([]string{"-m", "binary"}, extra...)
	args = append(args, "127.0.0.1", port, "-c", "get", remote, local)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

func TestTFTPClientsFetchByteIdentical(t *testing.T) {
	fx := startTFTP(t, 8<<20)
	dir := t.TempDir()
	for _, name := range []string{"undionly.kpxe", "big.bin", "sub/x.txt"} {
		// tftp-hpa: plain RFC 1350 (512-byte blocks, no options).
		local := filepath.Join(dir, strings.ReplaceAll(name, "/", "_")+".hpa")
		if out, err := tftpHPA(t, fx.port, name, local, "-v"); err != nil {
			t.Fatalf("tftp-hpa get %s: %v\n%s", name, err, out)
		}
		got, _ := os.ReadFile(local)
		if !bytes.Equal(got, fx.want(t, name)) {
			t.Fatalf("tftp-hpa %s: %d bytes differ from the source", name, len(got))
		}
		// curl with blksize 1468.
		requireTool(t, "curl", "curl")
		local = filepath.Join(dir, strings.ReplaceAll(name, "/", "_")+".curl")
		out, err := exec.Command("curl", "-sS", "--max-time", "120", "--tftp-blksize", "1468", "-o", local, "tftp://127.0.0.1:"+fx.port+"/"+name).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", name, err, out)
		}
		got, _ = os.ReadFile(local)
		if !bytes.Equal(got, fx.want(t, name)) {
			t.Fatalf("curl %s: %d bytes differ from the source", name, len(got))
		}
	}
	// The server counts a transfer when the client's last ACK arrives,
	// which can be just after the client has returned.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if counter(fx.srv.m.transfers.WithLabelValues("ok")) >= 6 && counter(fx.srv.m.bytes) >= float64(2*(74213+8<<20+6)) {
			break
		}
	}
	if got := counter(fx.srv.m.transfers.WithLabelValues("ok")); got != 6 {
		t.Errorf("ok transfers = %v, want 6", got)
	}
	if got := counter(fx.srv.m.bytes); got != float64(2*(74213+8<<20+6)) {
		t.Errorf("bytes counter = %v", got)
	}
}

func TestTFTPRefusesEscapesAndWrites(t *testing.T) {
	fx := startTFTP(t, 1024)
	dir := t.TempDir()
	for _, name := range []string{"../../etc/passwd", "/etc/passwd", "//etc/passwd", "/../etc/passwd", "sub/../../etc/passwd", "escape", "..\\..\\etc\\passwd", "missing.bin"} {
		local := filepath.Join(dir, "out")
		out, _ := tftpHPA(t, fx.port, name, local)
		// tftp-hpa exits 0 even on a TFTP error; the error text and the
		// absence of /etc/passwd's content are what count.
		if !strings.Contains(strings.ToLower(out), "error") {
			t.Errorf("%q: no TFTP error reported: %q", name, out)
		}
		if b, err := os.ReadFile(local); err == nil && bytes.Contains(b, []byte("root:")) {
			t.Fatalf("%q leaked /etc/passwd", name)
		}
		os.Remove(local)
	}
	if got := counter(fx.srv.m.refused.WithLabelValues("path")); got < 4 {
		t.Errorf("path refusals = %v, want ≥ 4", got)
	}
	// curl's put is a TFTP write request.
	src := filepath.Join(dir, "up")
	os.WriteFile(src, []byte("data"), 0o644)
	out, err := exec.Command("curl", "-sS", "--max-time", "10", "-T", src, "tftp://127.0.0.1:"+fx.port+"/up").CombinedOutput()
	if err == nil {
		t.Errorf("write accepted: %s", out)
	}
	if _, err := os.Stat(filepath.Join(fx.root, "up")); err == nil {
		t.Error("write created a file")
	}
	if got := counter(fx.srv.m.refused.WithLabelValues("write")); got != 1 {
		t.Errorf("write refusals = %v", got)
	}
}

// TestTFTPSurvivesRandomDatagrams floods the port with 10,000 random and
// mutated datagrams, then a real client still fetches a file.
func TestTFTPSurvivesRandomDatagrams(t *testing.T) {
	fx := startTFTP(t, 1024)
	c, err := net.Dial("udp4", "127.0.0.1:"+fx.port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rng := mrand.New(mrand.NewPCG(3, 4))
	rrq := []byte("\x00\x01undionly.kpxe\x00octet\x00blksize\x001468\x00")
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < 10000 && time.Now().Before(deadline); i++ {
		var b []byte
		if i%2 == 0 {
			b = make([]byte, 1+rng.IntN(600))
			for j := range b {
				b[j] = byte(rng.UintN(256))
			}
			if b[0] == 0 && len(b) > 1 && (b[1] == 1 || b[1] == 2) {
				b[1] = 9 // keep random bytes from being a request that opens a transfer
			}
		} else {
			b = append([]byte(nil), rrq...)
			b[0] = byte(rng.UintN(256)) | 1
		}
		c.Write(b)
		if i%50 == 0 {
			time.Sleep(time.Millisecond) // the server reads serially; don't just overflow the socket buffer
		}
	}
	time.Sleep(200 * time.Millisecond)
	local := filepath.Join(t.TempDir(), "out")
	if out, err := tftpHPA(t, fx.port, "undionly.kpxe", local); err != nil {
		t.Fatalf("after the flood: %v\n%s", err, out)
	}
	got, _ := os.ReadFile(local)
	if !bytes.Equal(got, fx.want(t, "undionly.kpxe")) {
		t.Fatal("after the flood: file differs")
	}
	if got := counter(fx.srv.m.malformed); got < 1000 {
		t.Errorf("malformed counter = %v, want ≥ 1000", got)
	}
}

// TestTFTPNegotiatesOptions checks the OACK with pin/tftp's own client:
// tsize carries the file size, and the transfer with a requested 1468-byte
// blksize (which the client enforces once OACKed) is byte-identical.
func TestTFTPNegotiatesOptions(t *testing.T) {
	fx := startTFTP(t, 1024)
	c, err := tftp.NewClient("127.0.0.1:" + fx.port)
	if err != nil {
		t.Fatal(err)
	}
	c.SetBlockSize(1468)
	c.RequestTSize(true)
	wt, err := c.Receive("undionly.kpxe", "octet")
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := wt.(tftp.IncomingTransfer).Size(); !ok || n != 74213 {
		t.Errorf("tsize = %d, %v; want 74213", n, ok)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), fx.want(t, "undionly.kpxe")) {
		t.Fatal("content differs")
	}
}

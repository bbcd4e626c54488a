package imaging

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireTool skips (or, under METAL_REQUIRE_ALL=1, fails) when a
// third-party tool the test needs is missing.
func requireTool(t testing.TB, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		msg := "missing " + name + ": install Debian package " + pkg
		if os.Getenv("METAL_REQUIRE_ALL") == "1" {
			t.Fatalf("%s", msg)
		}
		t.Skipf("%s", msg)
	}
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// testDisk writes a deterministic raw disk of size bytes: random islands
// at unaligned offsets, compressible text, long zero runs, and data in
// the last sector.
func testDisk(t testing.TB, path string, size int64) {
	t.Helper()
	b := make([]byte, size)
	rnd := rand.New(rand.NewPCG(1, 2))
	fillRand := func(off, n int64) {
		off = max(off, 0)
		for i := off; i < off+n && i < size; i++ {
			b[i] = byte(rnd.Uint32())
		}
	}
	fillText := func(off, n int64) {
		off = max(off, 0)
		s := []byte("metal bare-metal provisioning test pattern 0123456789\n")
		for i := off; i < off+n && i < size; i++ {
			b[i] = s[(i-off)%int64(len(s))]
		}
	}
	fillRand(0, 4096)                 // "boot sector" and more
	fillRand(1000+64<<10, 200<<10)    // unaligned island
	fillText(1<<20, 1<<20)            // compressible
	fillRand(3<<20+512, 512)          // one lone sector
	fillRand(5<<20-3000, 600<<10)     // straddles cluster and block bounds
	fillText(size-(300<<10), 100<<10) // near the end
	fillRand(size-512, 512)           // last sector
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func sha256File(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// qemuRef converts img to raw with qemu-img and returns the digest and size.
func qemuRef(t testing.TB, img, format string) (string, int64) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "ref.raw")
	args := []string{"convert"}
	if format != "" {
		args = append(args, "-f", format)
	}
	run(t, "qemu-img", append(args, "-O", "raw", img, out)...)
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	return sha256File(t, out), st.Size()
}

// pipeReader hides every interface but io.Reader.
type pipeReader struct{ r io.Reader }

func (p pipeReader) Read(b []byte) (int, error) { return p.r.Read(b) }

// openInput opens path as a file, or through a pipe without Seek or Stat;
// both close when the test ends.
func openInput(t testing.TB, path string, pipe bool) io.Reader {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if !pipe {
		return f
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, f)
		pw.CloseWithError(err)
	}()
	t.Cleanup(func() { pr.Close() })
	return pipeReader{pr}
}

// convertOurs opens path (as a file, or through a pipe without Seek or
// Stat) and writes it to a fresh file, returning Write's result after
// checking the file's digest against it.
func convertOurs(t testing.TB, path string, pipe bool, opts Options) (Result, error) {
	t.Helper()
	s, err := Open(openInput(t, path, pipe), opts)
	if err != nil {
		return Result{}, err
	}
	outPath := filepath.Join(t.TempDir(), "out.raw")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	res, err := Write(context.Background(), s, out, WriteOptions{})
	if err != nil {
		return res, err
	}
	if got := sha256File(t, outPath); got != res.SHA256 {
		t.Fatalf("written file digest %s, Result.SHA256 %s", got, res.SHA256)
	}
	return res, nil
}

package imagecli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/metal-iaas/metal/pkg/imaging"
)

// requireTool fails under METAL_REQUIRE_ALL=1 and skips loudly otherwise.
func requireTool(t *testing.T, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err == nil {
		return
	}
	if os.Getenv("METAL_REQUIRE_ALL") == "1" {
		t.Fatalf("missing %s: install the Debian package %s", tool, pkg)
	}
	t.Skipf("SKIPPED: missing %s: install the Debian package %s", tool, pkg)
}

func run(t *testing.T, dir, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

const testDiskSize = 24 << 20

// makeRawDisk writes a raw disk with deterministic random data in a few
// places (cluster-aligned and not), an all-zero "data" region and long
// runs of nothing, and returns its path and the count of non-zero bytes
// written.
func makeRawDisk(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "disk.raw")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(testDiskSize); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, ext := range []struct{ off, n int64 }{
		{0, 64 << 10},               // boot area
		{1<<20 + 512, 300 << 10},    // unaligned
		{5 << 20, 2 << 20},          // a larger run
		{12<<20 - 4096, 8192},       // straddles a 64 KiB cluster boundary
		{testDiskSize - 4096, 4096}, // the very end
	} {
		b := make([]byte, ext.n)
		for i := range b {
			b[i] = byte(r.Uint32()) | 1 // never zero
		}
		if _, err := f.WriteAt(b, ext.off); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// nonZeroBytes of the disk made by makeRawDisk.
const nonZeroBytes = 64<<10 + 300<<10 + 2<<20 + 8192 + 4096

// qemuRaw converts img to raw with qemu-img and returns the raw bytes.
func qemuRaw(t *testing.T, dir, img string, extra ...string) []byte {
	t.Helper()
	ref := filepath.Join(dir, "ref-"+filepath.Base(img)+".raw")
	args := append([]string{"convert"}, extra...)
	run(t, dir, "qemu-img", append(args, "-O", "raw", img, ref)...)
	b, err := os.ReadFile(ref)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(ref)
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// execute runs cmd in-process with args; stdin, if non-nil, replaces
// os.Stdin with a pipe fed from it (the real fd path, not cobra's SetIn).
func execute(t *testing.T, cmd *cobra.Command, stdin io.Reader, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	cmd.SilenceUsage = true
	if stdin != nil {
		pr, pw, perr := os.Pipe()
		if perr != nil {
			t.Fatal(perr)
		}
		old := os.Stdin
		os.Stdin = pr
		defer func() { os.Stdin = old; pr.Close() }()
		go func() {
			io.Copy(pw, stdin)
			pw.Close()
		}()
	}
	err = cmd.Execute()
	return out.String(), errb.String(), err
}

// sha256Line extracts the digest convert prints.
func sha256Line(t *testing.T, stdout string) string {
	t.Helper()
	for _, l := range strings.Split(stdout, "\n") {
		if h, ok := strings.CutPrefix(l, "sha256: "); ok {
			return h
		}
	}
	t.Fatalf("no sha256 line in %q", stdout)
	return ""
}

// lineValue extracts what follows prefix on its line, up to a space.
func lineValue(t *testing.T, stdout, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(stdout, "\n") {
		if v, ok := strings.CutPrefix(l, prefix); ok {
			return strings.Fields(v)[0]
		}
	}
	t.Fatalf("no %q line in %q", prefix, stdout)
	return ""
}

// chunkManifest is raw's chunk manifest at the default chunk size,
// computed the plain way.
func chunkManifest(raw []byte, rawSHA string) *imaging.Manifest {
	cs := int64(imaging.DefaultChunkSize)
	m := &imaging.Manifest{Version: imaging.ManifestVersion, ChunkSize: cs, Size: int64(len(raw)), RawSHA256: rawSHA}
	for off := int64(0); off < int64(len(raw)); off += cs {
		c := raw[off:min(off+cs, int64(len(raw)))]
		if bytes.Count(c, []byte{0}) == len(c) {
			m.Chunks = append(m.Chunks, "")
			continue
		}
		m.Chunks = append(m.Chunks, sha256Hex(c))
	}
	return m
}

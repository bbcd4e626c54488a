package initramfs

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/metal-iaas/metal/test/testenv"
)

func needTool(t *testing.T, tool, pkg string) {
	t.Helper()
	testenv.Tool(t, tool, pkg)
}

func sampleArchive(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	c := NewCPIOWriter(&buf)
	steps := []error{
		c.Dir("etc", 0o755),
		c.File("init", 0o755, 5, strings.NewReader("#!ok\n")),
		c.File("/lib/modules/6.1/kernel/a.ko", 0o644, 3, strings.NewReader("abc")), // implicit parents
		c.File("lib/modules/6.1/modules.dep", 0o644, 0, strings.NewReader("")),
		c.Symlink("bin/sh", "../init"),
		c.CharDev("dev/console", 0o600, 5, 1),
		c.Dir("etc", 0o755), // twice: once in the archive
		c.Close(),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive length %d not 4-aligned", buf.Len())
	}
	return buf.Bytes()
}

var wantList = []string{
	"bin", "bin/sh", "dev", "dev/console", "etc", "init", "lib", "lib/modules", "lib/modules/6.1",
	"lib/modules/6.1/kernel", "lib/modules/6.1/kernel/a.ko", "lib/modules/6.1/modules.dep",
}

func listOf(out string) []string {
	var l []string
	for _, s := range strings.Split(strings.TrimSpace(out), "\n") {
		if s != "" && !strings.Contains(s, "blocks") {
			l = append(l, strings.TrimPrefix(s, "./"))
		}
	}
	sort.Strings(l)
	return l
}

// GNU cpio is the real peer: it lists and extracts what we write.
func TestCPIOReadByGNUCpio(t *testing.T) {
	needTool(t, "cpio", "cpio")
	arc := sampleArchive(t)
	cmd := exec.Command("cpio", "-t", "--quiet")
	cmd.Stdin = bytes.NewReader(arc)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio -t: %v", err)
	}
	if got := listOf(string(out)); strings.Join(got, " ") != strings.Join(wantList, " ") {
		t.Fatalf("cpio -t lists\n %v\nwant\n %v", got, wantList)
	}
	cmd = exec.Command("cpio", "-tv", "--quiet")
	cmd.Stdin = bytes.NewReader(arc)
	out, _ = cmd.Output()
	for _, want := range []string{"crw-------", "5,   1", "bin/sh -> ../init", "-rwxr-xr-x"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("cpio -tv lacks %q:\n%s", want, out)
		}
	}
	dir := t.TempDir()
	cmd = exec.Command("cpio", "-id", "--quiet", "--no-absolute-filenames", "--nonmatching", "dev/console")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(arc)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -id: %v\n%s", err, b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "lib/modules/6.1/kernel/a.ko")); string(b) != "abc" {
		t.Errorf("extracted a.ko = %q", b)
	}
	if st, err := os.Stat(filepath.Join(dir, "init")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("init: %v %v", st, err)
	}
}

// libarchive's bsdtar is a second, independent reader.
func TestCPIOReadByBsdtar(t *testing.T) {
	needTool(t, "bsdtar", "libarchive-tools")
	cmd := exec.Command("bsdtar", "-tf", "-")
	cmd.Stdin = bytes.NewReader(sampleArchive(t))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bsdtar: %v\n%s", err, out)
	}
	if got := listOf(string(out)); strings.Join(got, " ") != strings.Join(wantList, " ") {
		t.Fatalf("bsdtar lists %v", got)
	}
}

func TestCPIOErrors(t *testing.T) {
	c := NewCPIOWriter(io.Discard)
	if err := c.File("", 0o644, 0, strings.NewReader("")); err == nil {
		t.Error("empty name accepted")
	}
	if err := c.File("x", 0o644, 10, strings.NewReader("short")); err == nil || !strings.Contains(err.Error(), "wrote 5 of 10") {
		t.Errorf("short file: %v", err)
	}
	_ = c.Close()
	if err := c.Dir("late", 0o755); err == nil {
		t.Error("write after close accepted")
	}
}

// Build against a fake kernel tree: the closure of the wanted modules
// with their dependencies, filtered modules.alias and modules.dep.
func TestBuild(t *testing.T) {
	needTool(t, "cpio", "cpio")
	dir := t.TempDir()
	mods := filepath.Join(dir, "lib/modules/6.1.0-test")
	files := map[string]string{
		"modules.dep": "kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko\n" +
			"kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\nkernel/net/core/failover.ko:\n" +
			"kernel/sound/snd.ko:\nkernel/drivers/block/virtio_blk.ko:\n",
		"modules.alias":                      "alias virtio:d00000001v* virtio_net\nalias virtio:d00000002v* virtio_blk\nalias pci:v1* snd\n",
		"kernel/drivers/net/virtio_net.ko":   "VNET",
		"kernel/drivers/net/net_failover.ko": "NF",
		"kernel/net/core/failover.ko":        "FO",
		"kernel/sound/snd.ko":                "SND",
		"kernel/drivers/block/virtio_blk.ko": "VBLK",
	}
	for p, s := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(mods, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mods, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	agent := filepath.Join(dir, "agent")
	if err := os.WriteFile(agent, []byte("\x7fELF-agent"), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	m, err := Build(&out, Options{Agent: agent, ModulesDir: mods, Modules: []string{"virtio-net", "nonexistent*"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(m.Modules, " ") != "failover net_failover virtio_net" || m.Release != "6.1.0-test" || m.Bytes != 8 {
		t.Errorf("manifest %+v", m)
	}
	zr, err := gzip.NewReader(&out)
	if err != nil {
		t.Fatal(err)
	}
	x := t.TempDir()
	cmd := exec.Command("cpio", "-id", "--quiet", "--no-absolute-filenames", "--nonmatching", "dev/*")
	cmd.Dir = x
	cmd.Stdin = zr
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v\n%s", err, b)
	}
	read := func(p string) string { b, _ := os.ReadFile(filepath.Join(x, p)); return string(b) }
	if read("init") != "\x7fELF-agent" {
		t.Error("init is not the agent")
	}
	base := "lib/modules/6.1.0-test/"
	if read(base+"kernel/net/core/failover.ko") != "FO" || read(base+"kernel/sound/snd.ko") != "" {
		t.Error("wrong module set extracted")
	}
	if a := read(base + "modules.alias"); a != "alias virtio:d00000001v* virtio_net\n" {
		t.Errorf("modules.alias = %q", a)
	}
	if d := read(base + "modules.dep"); !strings.Contains(d, "kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko\n") || strings.Contains(d, "snd") {
		t.Errorf("modules.dep = %q", d)
	}
	// Reproducible: the same inputs give the same bytes.
	var a, b bytes.Buffer
	if _, err := Build(&a, Options{Agent: agent, ModulesDir: mods}); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(&b, Options{Agent: agent, ModulesDir: mods}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two builds from the same inputs differ")
	}
	if _, err := Build(io.Discard, Options{Agent: agent, ModulesDir: dir}); err == nil || !strings.Contains(err.Error(), "depmod") {
		t.Errorf("missing modules.dep: %v", err)
	}
}

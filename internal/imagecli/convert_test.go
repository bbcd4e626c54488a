package imagecli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// imageCase is one format made by the real tools at test time.
type imageCase struct {
	name     string
	qemuArgs []string // qemu-img convert -f raw ARGS disk.raw OUT; nil = the raw disk itself
	refArgs  []string // extra qemu-img args for the reference conversion
	wrap     []string // compressor command, e.g. zstd -q -c
	flags    []string // extra convert flags
}

var imageCases = []imageCase{
	{name: "raw"},
	{name: "qcow2", qemuArgs: []string{"-O", "qcow2"}},
	{name: "qcow2-v2", qemuArgs: []string{"-O", "qcow2", "-o", "compat=0.10"}},
	{name: "qcow2-zlib", qemuArgs: []string{"-O", "qcow2", "-c"}},
	{name: "vmdk-streamOptimized", qemuArgs: []string{"-O", "vmdk", "-o", "subformat=streamOptimized"}},
	{name: "vmdk-monolithicSparse", qemuArgs: []string{"-O", "vmdk"}},
	{name: "vhd-dynamic", qemuArgs: []string{"-O", "vpc", "-o", "force_size=on"}},
	{name: "vhd-fixed", qemuArgs: []string{"-O", "vpc", "-o", "subformat=fixed,force_size=on"}, refArgs: []string{"-f", "vpc"}, flags: []string{"--input-format", "vhd"}},
	{name: "vhdx", qemuArgs: []string{"-O", "vhdx"}},
	{name: "raw.zst", wrap: []string{"zstd", "-q", "-c"}},
	{name: "qcow2.gz", qemuArgs: []string{"-O", "qcow2"}, wrap: []string{"gzip", "-c"}},
	{name: "vmdk.xz", qemuArgs: []string{"-O", "vmdk", "-o", "subformat=streamOptimized"}, wrap: []string{"xz", "-c", "-T1"}},
	{name: "vhdx.bz2", qemuArgs: []string{"-O", "vhdx"}, wrap: []string{"bzip2", "-c"}},
}

// build makes the image and returns its path and the reference raw disk.
func (c imageCase) build(t *testing.T, dir, raw string) (string, []byte) {
	t.Helper()
	img := raw
	if c.qemuArgs != nil {
		img = filepath.Join(dir, c.name+".img")
		run(t, dir, "qemu-img", append(append([]string{"convert", "-f", "raw"}, c.qemuArgs...), raw, img)...)
	}
	ref := qemuRaw(t, dir, img, c.refArgs...)
	if c.wrap != nil {
		requireTool(t, c.wrap[0], map[string]string{"zstd": "zstd", "gzip": "gzip", "xz": "xz-utils", "bzip2": "bzip2"}[c.wrap[0]])
		out := run(t, dir, c.wrap[0], append(c.wrap[1:], img)...)
		img = filepath.Join(dir, c.name)
		if err := os.WriteFile(img, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return img, ref
}

// TestConvertMatchesQemuImg: every format qemu-img writes converts to the
// bytes `qemu-img convert -O raw` produces, from a file and from a pipe.
func TestConvertMatchesQemuImg(t *testing.T) {
	requireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	raw := makeRawDisk(t, dir)
	for _, c := range imageCases {
		t.Run(c.name, func(t *testing.T) {
			img, ref := c.build(t, dir, raw)
			out := filepath.Join(dir, c.name+".out")
			stdout, _, err := execute(t, NewConvertCmd(), nil, append(append([]string{"--sha256"}, c.flags...), img, out)...)
			if err != nil {
				t.Fatalf("convert: %v", err)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, ref) {
				t.Fatalf("output differs from qemu-img convert -O raw (%d vs %d bytes)", len(got), len(ref))
			}
			if h := sha256Line(t, stdout); h != sha256Hex(ref) {
				t.Errorf("printed sha256 %s, want %s", h, sha256Hex(ref))
			}
			want := chunkManifest(ref, sha256Hex(ref))
			if h := lineValue(t, stdout, "chunks: "); h != want.ContentDigest() {
				t.Errorf("printed chunk digest %s, want %s", h, want.ContentDigest())
			}
			if h := lineValue(t, stdout, "manifest: "); h != want.Digest() {
				t.Errorf("printed manifest digest %s, want %s (what metald serves)", h, want.Digest())
			}
			if !strings.Contains(stdout, out+": "+strconv.Itoa(len(ref))+" bytes raw") {
				t.Errorf("size line missing: %q", stdout)
			}

			// The same image through a pipe on stdin.
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			pipeOut := filepath.Join(dir, c.name+".pipe.out")
			stdout, _, err = execute(t, NewConvertCmd(), f, append(c.flags, "-", pipeOut)...)
			if err != nil {
				t.Fatalf("convert from a pipe: %v", err)
			}
			got, err = os.ReadFile(pipeOut)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, ref) || lineValue(t, stdout, "chunks: ") != want.ContentDigest() {
				t.Fatalf("pipe output differs from qemu-img convert -O raw")
			}
			if strings.Contains(stdout, "sha256: ") {
				t.Errorf("raw sha256 computed without --sha256: %q", stdout)
			}
			os.Remove(out)
			os.Remove(pipeOut)
		})
	}
}

// An existing regular file is replaced (keeping its permissions) only on
// success; a refused image leaves it untouched and leaves no temp file.
func TestConvertReplacesOnlyOnSuccess(t *testing.T) {
	requireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	raw := makeRawDisk(t, dir)
	img, ref := imageCases[1].build(t, dir, raw) // qcow2
	out := filepath.Join(dir, "existing.raw")
	old := bytes.Repeat([]byte("old contents "), 5<<20/13)
	if err := os.WriteFile(out, old, 0o600); err != nil {
		t.Fatal(err)
	}

	// A truncated qcow2 must fail and leave the old file as it was.
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "truncated.qcow2")
	if err := os.WriteFile(bad, b[:len(b)*2/3], 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = execute(t, NewConvertCmd(), nil, bad, out)
	if err == nil || !strings.Contains(err.Error(), "nothing written to "+out) {
		t.Fatalf("truncated image: err = %v", err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, old) {
		t.Fatal("a failed conversion changed the existing file")
	}
	assertNoTemp(t, dir)

	if _, _, err := execute(t, NewConvertCmd(), nil, img, out); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, ref) {
		t.Fatal("replaced file differs from qemu-img's conversion")
	}
	st, _ := os.Stat(out)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want the old 0600", st.Mode().Perm())
	}
	assertNoTemp(t, dir)
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, ".*.metal-*"))
	if len(m) != 0 {
		t.Fatalf("temporary files left behind: %v", m)
	}
}

// A block device is refused without --force and never touched; other
// special files are refused always.
func TestConvertRefusesSpecialTargets(t *testing.T) {
	requireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	raw := makeRawDisk(t, dir)

	dev := filepath.Join(dir, "fakedisk")
	if err := syscall.Mknod(dev, syscall.S_IFBLK|0o600, int(mkdev(7, 250))); err != nil {
		if os.Getenv("METAL_REQUIRE_ALL") == "1" {
			t.Fatalf("mknod a block device node needs root: %v", err)
		}
		t.Logf("SKIPPED block device part: mknod needs root: %v", err)
	} else {
		_, _, err := execute(t, NewConvertCmd(), nil, raw, dev)
		if err == nil || !strings.Contains(err.Error(), "block device") || !strings.Contains(err.Error(), "--force") {
			t.Fatalf("block device without --force: %v", err)
		}
		// With --force it is opened (and here fails: no such device), so
		// the refusal above really was the guard.
		_, _, err = execute(t, NewConvertCmd(), nil, "--force", raw, dev)
		if err == nil || strings.Contains(err.Error(), "--force") {
			t.Fatalf("block device with --force: %v", err)
		}
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := execute(t, NewConvertCmd(), nil, raw, fifo); err == nil || !strings.Contains(err.Error(), "named pipe") {
		t.Fatalf("fifo: %v", err)
	}
	if _, _, err := execute(t, NewConvertCmd(), nil, raw, dir); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("directory: %v", err)
	}
	if _, _, err := execute(t, NewConvertCmd(), nil, raw, raw); err == nil || !strings.Contains(err.Error(), "input file") {
		t.Fatalf("output = input: %v", err)
	}
	assertNoTemp(t, dir)
}

func mkdev(major, minor uint32) uint64 {
	return uint64(major&0xfff)<<8 | uint64(minor&0xff) | uint64(minor&^0xff)<<12 | uint64(major&^0xfff)<<32
}

// Limits from the flags reach the reader.
func TestConvertFlags(t *testing.T) {
	requireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	raw := makeRawDisk(t, dir)
	img, _ := imageCases[1].build(t, dir, raw) // qcow2
	out := filepath.Join(dir, "out.raw")
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--max-size", "16M", img, out}, "too large"},
		{[]string{"--format-allow", "vmdk,raw", img, out}, "not allowed"},
		{[]string{"--max-size", "lots", img, out}, "--max-size"},
		{[]string{"--max-buffer", "0", img, out}, "positive"},
		{[]string{"--input-format", "qcow9", img, out}, "--input-format"},
		{[]string{filepath.Join(dir, "missing"), out}, "no such file"},
		{[]string{img, "-"}, "not to stdout"},
	} {
		_, _, err := execute(t, NewConvertCmd(), nil, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%v: err = %v, want it to mention %q", tt.args, err, tt.msg)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%v: output file created", tt.args)
		}
	}
	if _, _, err := execute(t, NewConvertCmd(), nil, "--max-size", "24M", "--format-allow", "qcow2", img, out); err != nil {
		t.Errorf("at the limit: %v", err)
	}
	for _, flag := range []string{"--no-digest", "--no-sha256"} {
		stdout, _, err := execute(t, NewConvertCmd(), nil, flag, img, out)
		if err != nil || strings.Contains(stdout, "chunks: ") || strings.Contains(stdout, "sha256: ") {
			t.Errorf("%s: %v, %q", flag, err, stdout)
		}
	}
}

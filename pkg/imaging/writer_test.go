package imaging

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// loopDevice attaches a loop device over a file of size bytes filled with
// 0xA5 (so holes that are not zeroed show), detached at cleanup.
func loopDevice(t *testing.T, size int64) (dev, backing string) {
	t.Helper()
	requireTool(t, "losetup", "mount")
	if os.Geteuid() != 0 {
		msg := "block-device writer tests need root for losetup"
		if os.Getenv("METAL_REQUIRE_ALL") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	backing = filepath.Join(t.TempDir(), "backing")
	if err := os.WriteFile(backing, bytes.Repeat([]byte{0xa5}, int(size)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", backing).CombinedOutput()
	if err != nil {
		msg := "losetup: " + err.Error() + ": " + string(out)
		if os.Getenv("METAL_REQUIRE_ALL") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dev = strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev, backing
}

func sha256Prefix(t *testing.T, path string, n int64) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(h, f, n); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestWriteBlockDevice(t *testing.T) {
	requireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	testDisk(t, raw, testDiskSize)
	dev, backing := loopDevice(t, 16<<20)
	for _, c := range []corpusCase{
		{name: "q", format: "qcow2", args: []string{"-c"}},
		{name: "v", format: "vhdx"},
	} {
		img := buildCase(t, dir, raw, c)
		want, size := qemuRef(t, img, "")
		f, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Open(f, Options{})
		if err != nil {
			t.Fatal(err)
		}
		target, err := OpenTarget(dev)
		if err != nil {
			t.Fatal(err)
		}
		var reports []Progress
		res, err := Write(context.Background(), s, target, WriteOptions{Progress: func(p Progress) { reports = append(reports, p) }, Interval: time.Millisecond})
		target.Close()
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", c.format, err)
		}
		if !res.BlockDevice || res.SHA256 != want || (c.format == "qcow2" && res.ZeroBytes == 0) {
			t.Fatalf("%s: result %+v, want digest %s", c.format, res, want)
		}
		// What is on the device, holes included, is the image.
		if got := sha256Prefix(t, dev, size); got != want {
			t.Fatalf("%s: device holds %s, want %s", c.format, got, want)
		}
		if len(reports) == 0 || !reports[len(reports)-1].Done || reports[len(reports)-1].Position != size {
			t.Fatalf("%s: progress reports %+v", c.format, reports)
		}
	}
	// SkipHoles leaves holes alone: the backing file's 0xA5 shows through.
	os.WriteFile(backing, bytes.Repeat([]byte{0xa5}, 16<<20), 0o644)
	exec.Command("losetup", "-c", dev).Run()
	img := buildCase(t, dir, raw, corpusCase{name: "q2", format: "qcow2"})
	f, _ := os.Open(img)
	defer f.Close()
	s, err := Open(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	target, err := OpenTarget(dev)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Write(context.Background(), s, target, WriteOptions{SkipHoles: true})
	target.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.HoleBytes == 0 || res.ZeroBytes != 0 {
		t.Fatalf("SkipHoles result %+v", res)
	}
	b := make([]byte, 4096)
	d, _ := os.Open(dev)
	d.ReadAt(b, 8<<20) // a zero run of the test disk
	d.Close()
	if b[0] != 0xa5 {
		t.Fatalf("SkipHoles wrote the hole")
	}
}

func TestWriteRefusesSmallDeviceBeforeWriting(t *testing.T) {
	requireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	testDisk(t, raw, testDiskSize)
	img := buildCase(t, dir, raw, corpusCase{name: "q", format: "qcow2"})
	dev, _ := loopDevice(t, 8<<20)
	before := sha256Prefix(t, dev, 8<<20)
	f, _ := os.Open(img)
	defer f.Close()
	s, err := Open(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	target, err := OpenTarget(dev)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Write(context.Background(), s, target, WriteOptions{})
	target.Close()
	if !errors.Is(err, ErrTargetTooSmall) {
		t.Fatalf("Write: %v, want ErrTargetTooSmall", err)
	}
	if after := sha256Prefix(t, dev, 8<<20); after != before {
		t.Fatal("the device was written before the size check")
	}
	// A raw stream of unknown size is stopped at the device's end.
	pr, pw := io.Pipe()
	go func() {
		pw.Write(bytes.Repeat([]byte{1}, 9<<20))
		pw.Close()
	}()
	s, err = Open(pipeReader{pr}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	target, _ = OpenTarget(dev)
	_, err = Write(context.Background(), s, target, WriteOptions{})
	target.Close()
	if !errors.Is(err, ErrTargetTooSmall) {
		t.Fatalf("unknown-size raw: %v, want ErrTargetTooSmall", err)
	}
}

func TestWriteRegularFileReplacesContent(t *testing.T) {
	requireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	testDisk(t, raw, testDiskSize)
	img := buildCase(t, dir, raw, corpusCase{name: "q", format: "qcow2"})
	want, size := qemuRef(t, img, "")
	out := filepath.Join(dir, "out")
	// A pre-existing, larger file full of garbage.
	os.WriteFile(out, bytes.Repeat([]byte{0xa5}, 20<<20), 0o644)
	f, _ := os.Open(img)
	defer f.Close()
	cr := NewCountingReader(f)
	s, err := Open(cr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	target, err := OpenTarget(out)
	if err != nil {
		t.Fatal(err)
	}
	var last Progress
	res, err := Write(context.Background(), s, target, WriteOptions{Input: cr, Progress: func(p Progress) { last = p }})
	target.Close()
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(out)
	if got := sha256File(t, out); got != want || st.Size() != size || res.SHA256 != want {
		t.Fatalf("file %s (%d bytes), result %s; want %s (%d bytes)", got, st.Size(), res.SHA256, want, size)
	}
	fi, _ := os.Stat(img)
	if !last.Done || last.BytesRead != fi.Size() || last.Total != size {
		t.Fatalf("final progress %+v (image is %d bytes)", last, fi.Size())
	}
}

func TestWriteCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, err := Open(bytes.NewReader(make([]byte, 1<<20)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := os.Create(filepath.Join(t.TempDir(), "o"))
	defer out.Close()
	if _, err := Write(ctx, s, out, WriteOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write: %v", err)
	}
}

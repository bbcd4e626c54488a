package imaging

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// fuzzOptions keep every allocation a hostile input can cause small.
var fuzzOptions = Options{MaxVirtualSize: 4 << 20, MaxBuffer: 4 << 20}

// drainErr reads a stream to its end, checking the Stream contract, and
// returns the bytes of data seen and the final error (nil at io.EOF).
func drainErr(s Stream) (int64, error) {
	var end, data int64
	size := s.Info().VirtualSize
	for i := 0; ; i++ {
		e, err := s.Next()
		if errors.Is(err, io.EOF) {
			return data, nil
		}
		if err != nil {
			return data, err
		}
		if e.Offset < end || e.Length <= 0 {
			panic("extent out of order or empty")
		}
		if e.Kind == KindData && int64(len(e.Data)) != e.Length {
			panic("data extent with wrong length")
		}
		if size >= 0 && e.Offset+e.Length > size {
			panic("extent beyond the virtual size")
		}
		end = e.Offset + e.Length
		if e.Kind == KindData {
			data += e.Length
		}
	}
}

func fuzzStream(t *testing.T, b []byte) {
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			panic("input took more than 5s (hang?):\n" + string(buf[:n]))
		}
	}()
	for _, r := range []io.Reader{bytes.NewReader(b), pipeReader{bytes.NewReader(b)}} {
		s, err := Open(r, fuzzOptions)
		if err != nil {
			continue
		}
		drainErr(s)
	}
}

// qemuSeed makes a small image with qemu-img for a fuzz seed, or nil.
func qemuSeed(f *testing.F, max int, format string, args ...string) []byte {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		return nil
	}
	dir := f.TempDir()
	raw := filepath.Join(dir, "s.raw")
	testDisk(f, raw, 64<<10)
	img := filepath.Join(dir, "s.img")
	if err := exec.Command("qemu-img", append(append([]string{"convert", "-f", "raw", "-O", format}, args...), raw, img)...).Run(); err != nil {
		return nil
	}
	b, _ := os.ReadFile(img)
	if max > 0 && len(b) > max {
		b = b[:max]
	}
	return b
}

func addSeeds(f *testing.F, seeds ...[]byte) {
	for _, s := range seeds {
		if s != nil {
			f.Add(s)
		}
	}
}

func FuzzQcow2(f *testing.F) {
	addSeeds(f, craftQcow2(deflateRaw(make([]byte, 512)), false), craftQcow2(zstdBytes([]byte("x")), true),
		qemuSeed(f, 0, "qcow2", "-o", "cluster_size=4096"), qemuSeed(f, 0, "qcow2", "-c", "-o", "compat=0.10,cluster_size=512"))
	f.Fuzz(func(t *testing.T, b []byte) {
		b = withMagic(b, "QFI\xfb")
		fuzzStream(t, b)
	})
}

func FuzzVMDK(f *testing.F) {
	addSeeds(f, craftVMDKStream(zlibBytes(make([]byte, 64<<10))),
		qemuSeed(f, 0, "vmdk", "-o", "subformat=monolithicSparse"), qemuSeed(f, 0, "vmdk", "-o", "subformat=streamOptimized"))
	f.Fuzz(func(t *testing.T, b []byte) {
		b = withMagic(b, "KDMV")
		fuzzStream(t, b)
		if d, err := parseVMDKDescriptor(b); err == nil && len(d.extents) != 1 {
			t.Fatalf("descriptor with %d extents accepted", len(d.extents))
		}
	})
}

func FuzzVHD(f *testing.F) {
	// qemu's dynamic VHD keeps footer, header and BAT in the first
	// sectors; the 2 MiB blocks are left out to keep the seeds small.
	addSeeds(f, qemuSeed(f, 4096, "vpc"), qemuSeed(f, 4096, "vpc", "-o", "force_size=on"))
	f.Fuzz(func(t *testing.T, b []byte) {
		b = withMagic(b, "conectix")
		fuzzStream(t, b)
		// The fixed-VHD path reads the footer at the end.
		if s, err := Open(bytes.NewReader(b), Options{Format: "vhd", MaxVirtualSize: 4 << 20}); err == nil {
			drainErr(s)
		}
	})
}

func FuzzVHDX(f *testing.F) {
	addSeeds(f, craftVHDX())
	f.Fuzz(func(t *testing.T, b []byte) {
		b = withMagic(b, "vhdxfile")
		fuzzStream(t, b)
	})
}

func FuzzOpen(f *testing.F) {
	addSeeds(f, []byte{}, []byte("raw bytes"), zlibBytes([]byte("x")), craftQcow2(deflateRaw(make([]byte, 512)), false),
		[]byte(descHead+"RW 4096 FLAT \"/etc/shadow\" 0\n"), []byte("<?xml version=\"1.0\"?><Envelope/>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzStream(t, b)
	})
}

// withMagic returns a copy of b that starts with magic (fuzz inputs must
// not be modified in place).
func withMagic(b []byte, magic string) []byte {
	c := append([]byte(nil), b...)
	if len(c) >= len(magic) {
		copy(c, magic)
	}
	return c
}

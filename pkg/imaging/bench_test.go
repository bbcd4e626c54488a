package imaging

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// benchDisk writes a disk of mib MiB that looks like a used filesystem:
// runs of zeros, incompressible data and compressible text, in chunks of
// 64 KiB to 4 MiB.
func benchDisk(b *testing.B, path string, mib int) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rnd := rand.New(rand.NewPCG(7, 7))
	words := []string{"alpha ", "beta ", "gamma ", "metal ", "disk ", "\x00\x01\x02\x03", "qwertyuiop "}
	size := int64(mib) << 20
	sizes := []int64{64 << 10, 256 << 10, 1 << 20, 4 << 20}
	buf := make([]byte, 4<<20)
	for off := int64(0); off < size; {
		n := min(size-off, sizes[rnd.IntN(len(sizes))])
		chunk := buf[:n]
		switch k := rnd.Float64(); {
		case k < 0.35:
			clear(chunk)
		case k < 0.55:
			for i := range chunk {
				chunk[i] = byte(rnd.Uint32())
			}
		default:
			for i := 0; i < len(chunk); {
				i += copy(chunk[i:], words[rnd.IntN(len(words))])
			}
		}
		if _, err := f.Write(chunk); err != nil {
			b.Fatal(err)
		}
		off += n
	}
}

// BenchmarkConvert compares Open+Write with `qemu-img convert -O raw`
// (the anchor) per format, on a disk of METAL_BENCH_MIB MiB (default 256).
// Both write a sparse raw file to the same directory.
//
//	go test -run '^$' -bench Convert -benchtime 3x ./pkg/imaging/
func BenchmarkConvert(b *testing.B) {
	requireTool(b, "qemu-img", "qemu-utils")
	mib := 256
	if v, err := strconv.Atoi(os.Getenv("METAL_BENCH_MIB")); err == nil && v > 0 {
		mib = v
	}
	dir := b.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	benchDisk(b, raw, mib)
	for _, c := range []struct {
		name, format, ref string
		args              []string
	}{
		{"raw", "raw", "raw", nil},
		{"qcow2", "qcow2", "qcow2", nil},
		{"qcow2-zlib", "qcow2", "qcow2", []string{"-c"}},
		{"qcow2-zstd", "qcow2", "qcow2", []string{"-c", "-o", "compression_type=zstd"}},
		{"vmdk-stream", "vmdk", "vmdk", []string{"-o", "subformat=streamOptimized"}},
		{"vmdk-sparse", "vmdk", "vmdk", []string{"-o", "subformat=monolithicSparse"}},
		{"vhd", "vpc", "vpc", nil},
		{"vhdx", "vhdx", "vhdx", nil},
	} {
		img := filepath.Join(dir, c.name+".img")
		if c.format == "raw" {
			img = raw
		} else {
			out, err := exec.Command("qemu-img", append(append([]string{"convert", "-f", "raw", "-O", c.format}, c.args...), raw, img)...).CombinedOutput()
			if err != nil {
				b.Fatalf("%v: %s", err, out)
			}
		}
		out := filepath.Join(dir, "out.raw")
		b.Run(c.name+"/qemu-img", func(b *testing.B) {
			b.SetBytes(int64(mib) << 20)
			for b.Loop() {
				os.Remove(out)
				if o, err := exec.Command("qemu-img", "convert", "-f", c.ref, "-O", "raw", img, out).CombinedOutput(); err != nil {
					b.Fatalf("%v: %s", err, o)
				}
			}
		})
		for _, skip := range []bool{false, true} {
			name := c.name + "/metal"
			if skip {
				name += "-nohash"
			}
			b.Run(name, func(b *testing.B) {
				b.SetBytes(int64(mib) << 20)
				opts := Options{}
				if c.format == "vpc" {
					opts.Format = "vhd"
				}
				for b.Loop() {
					os.Remove(out)
					in, err := os.Open(img)
					if err != nil {
						b.Fatal(err)
					}
					s, err := Open(in, opts)
					if err != nil {
						b.Fatal(err)
					}
					dst, err := os.Create(out)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := Write(context.Background(), s, dst, WriteOptions{SkipHash: skip}); err != nil {
						b.Fatal(err)
					}
					dst.Close()
					in.Close()
				}
			})
		}
	}
}

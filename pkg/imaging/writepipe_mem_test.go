package imaging

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestWriteMemoryBounded streams a qcow2 with 192 MiB of incompressible
// data through a pipe into a file and samples the heap: borrowed 4 MiB
// stream buffers queued for the hash and write stages must stay bounded
// (before the bound, 2×64 of them could queue: a 384 MiB agent VM ran out
// of memory on a 448 MiB image).
func TestWriteMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 192 MiB")
	}
	requireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	raw := filepath.Join(dir, "rand.raw")
	f, err := os.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 1<<20)
	for range 192 {
		_, _ = rng.Read(buf)
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	img := filepath.Join(dir, "rand.qcow2")
	run(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, img)
	os.Remove(raw)

	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	in, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	s, err := Open(pipeReader{in}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(dir, "out.raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	runtime.GC()
	if _, err := Write(context.Background(), s, out, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-sampled
	const bound = 112 << 20 // 87 MiB measured with the bound, 171 MiB without
	t.Logf("peak heap in use %d MiB", peak.Load()>>20)
	if peak.Load() > bound {
		t.Errorf("peak heap in use %d MiB while writing 192 MiB of data, want ≤ %d MiB", peak.Load()>>20, bound>>20)
	}
}

package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// report prints the waves as a markdown table: time and its ratio to the
// same mode's smallest wave, metald's egress over the image's compressed
// size (its chunks, as metald stores them), and the bytes from peers.
func report(w io.Writer, o options, img string, rs []result) {
	comp := compressedSize(o)
	fmt.Fprintf(w, "\nimage: %s, %d bytes qcow2; %d bytes of zstd chunks (what metald serves); links and metald's uplink at %s\n\n",
		filepath.Base(img), fileSize(img), comp, o.rate)
	fmt.Fprintln(w, "| peers | N | wall time (s) | T(N)/T(1) | metald chunk bytes ÷ image | metald uplink bytes ÷ image | bytes from peers ÷ image | failed |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
	first := map[bool]float64{}
	for _, r := range rs {
		if _, ok := first[r.peers]; !ok && r.n == 1 {
			first[r.peers] = r.seconds
		}
		ratio := "—"
		if t1 := first[r.peers]; t1 > 0 {
			ratio = fmt.Sprintf("%.2f", r.seconds/t1)
		}
		div := func(b int64) string {
			if comp == 0 {
				return "?"
			}
			return fmt.Sprintf("%.2f", float64(b)/float64(comp))
		}
		mode := map[bool]string{false: "off", true: "on"}[r.peers]
		fmt.Fprintf(w, "| %s | %d | %.1f | %s | %s | %s | %s | %d |\n", mode, r.n, r.seconds, ratio, div(r.chunkBytes), div(r.egress), div(r.peerBytes), r.failed)
	}
}

// compressedSize sums the chunk files metald stored for the image (the
// last lab's data directory).
func compressedSize(o options) int64 {
	var total int64
	for _, mode := range []string{"on", "off"} {
		files, _ := filepath.Glob(filepath.Join(o.dir, "peers-"+mode, "metald-data", "images", "chunks", "*", "*.zst"))
		for _, f := range files {
			if st, err := os.Stat(f); err == nil {
				total += st.Size()
			}
		}
		if total > 0 {
			return total
		}
	}
	return 0
}

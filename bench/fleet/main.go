// Command fleet measures provisioning a wave of machines: N real
// metal-agents run as normal programs (metal-agent --dev-dir, each in a
// network namespace of its own on the lab bridge, no VMs) provision one
// image from one metald, with every agent's link and metald's uplink
// shaped by tc to the same rate. For each N it reports the wall time to
// all machines provisioned, metald's egress (chunk bytes and all bytes
// through its uplink) divided by the image's compressed size, and the
// bytes the agents got from each other — once with peer-to-peer sharing
// off (every chunk from metald: the anchor) and once on, in the same
// run. bench/fleet/run.sh wraps it; BENCHMARKS.md has the results.
//
// Root only (namespaces, tc). Nothing leaves the lab namespace.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/metal-iaas/metal/test/lab"
)

type options struct {
	dir     string
	ns      []int
	rate    string
	fillMiB int
	diskMiB int
	modes   []bool // peers off, on
	timeout time.Duration
	metald  []string // extra metald serve flags
}

func main() {
	var o options
	var ns, modes, extra string
	flag.StringVar(&o.dir, "dir", "/var/tmp/metal-bench-fleet", "work directory (image cache, agent disks, logs)")
	flag.StringVar(&ns, "n", "1,4,8,16", "wave sizes to run")
	flag.StringVar(&o.rate, "rate", "50mbit", "tc rate of every link and of metald's uplink")
	flag.IntVar(&o.fillMiB, "fill", 60, "MiB of files (from /usr) on the image's ext4 filesystem")
	flag.IntVar(&o.diskMiB, "disk", 512, "MiB of the image's raw disk")
	flag.StringVar(&modes, "peers", "off,on", "peer-to-peer modes to run, in order")
	flag.DurationVar(&o.timeout, "timeout", 15*time.Minute, "bound on one wave")
	flag.StringVar(&extra, "metald", "", "extra metald serve flags, space-separated (e.g. \"--seed-slots 2 --peer-conns 2\")")
	flag.Parse()
	o.metald = strings.Fields(extra)
	for _, s := range strings.Split(ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 64 {
			fatalf("-n %q: want wave sizes from 1 to 64", s)
		}
		o.ns = append(o.ns, n)
	}
	for _, m := range strings.Split(modes, ",") {
		switch strings.TrimSpace(m) {
		case "on":
			o.modes = append(o.modes, true)
		case "off":
			o.modes = append(o.modes, false)
		default:
			fatalf("-peers %q: want off and/or on", m)
		}
	}
	if err := lab.Check(); err != nil {
		fatalf("%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "fleet: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "# "+format+"\n", args...)
}

// result is one wave.
type result struct {
	peers                  bool
	n                      int
	seconds                float64
	chunkBytes, egress     int64 // metald: chunks served; all bytes out of its uplink
	peerBytes, serverBytes int64 // what the agents report
	failed                 int
}

func run(ctx context.Context, o options) error {
	root, err := lab.RepoRoot()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	logf("building metald, metalctl, metal-agent")
	bins, err := lab.Build(ctx, root, filepath.Join(o.dir, "bin"))
	if err != nil {
		return err
	}
	img, err := buildImage(ctx, o)
	if err != nil {
		return err
	}
	logf("image %s: %d bytes qcow2 of a %d MiB disk", img, fileSize(img), o.diskMiB)
	var results []result
	for _, peers := range o.modes {
		rs, err := runMode(ctx, o, bins, img, peers)
		results = append(results, rs...)
		if err != nil {
			report(os.Stdout, o, img, results)
			return err
		}
	}
	report(os.Stdout, o, img, results)
	return nil
}

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

// Command fanout measures pkg/bmc's Manager fan-out against a fleet of
// emulated Redfish BMCs (test/bmcsim) in one process: PowerStatus and
// PowerOn for every BMC, with metal's default concurrency and with one
// operation at a time (the anchor: Tinkerbell's BMC controller default).
// It prints a markdown table.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/metal-iaas/metal/pkg/bmc"
	"github.com/metal-iaas/metal/test/bmcsim"
)

func main() {
	n := flag.Int("n", 200, "number of emulated BMCs")
	concurrency := flag.Int("concurrency", bmc.DefaultConcurrency, "metal's Manager concurrency")
	runs := flag.Int("runs", 3, "runs per metal cell (best is reported); the anchor runs once when latency > 0")
	latency := flag.Duration("latency", 50*time.Millisecond, "per-request latency of the emulated BMCs in the latency rows")
	noAnchor := flag.Bool("noanchor", false, "skip the anchor (for profiling)")
	only := flag.String("only", "", "run only rows whose transport/latency matches: https-latency, https, http")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fanout:", err)
			os.Exit(1)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	onlyRow, skipAnchor = *only, *noAnchor
	if err := run(*n, *concurrency, *runs, *latency); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "fanout:", err)
		os.Exit(1)
	}
}

type cell struct {
	best     time.Duration
	failures int
}

var (
	onlyRow    string
	skipAnchor bool
)

func run(n, concurrency, runs int, latency time.Duration) error {
	fmt.Printf("| operation | transport | BMC latency | BMCs | metal (concurrency %d) | anchor: one at a time | ratio metal ÷ anchor | metal ops/s |\n", concurrency)
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, cfg := range []struct {
		useTLS  bool
		latency time.Duration
	}{{true, latency}, {true, 0}, {false, 0}} {
		useTLS := cfg.useTLS
		row := map[bool]string{true: "https", false: "http"}[useTLS]
		if cfg.latency > 0 {
			row += "-latency"
		}
		if onlyRow != "" && onlyRow != row {
			continue
		}
		fleet, err := bmcsim.NewFleet(n, bmcsim.Config{User: "admin", Password: "bench-pw", Latency: cfg.latency}, useTLS)
		if err != nil {
			return err
		}
		var targets []bmc.Target
		for i, u := range fleet.URLs() {
			ep, err := bmc.ParseURL(u)
			if err != nil {
				return err
			}
			targets = append(targets, bmc.Target{Name: fmt.Sprintf("m%03d", i), Endpoint: ep})
		}
		transport := map[bool]string{true: "Redfish HTTPS", false: "Redfish HTTP"}[useTLS]
		for _, op := range []struct {
			name string
			op   bmc.Op
		}{{"PowerStatus", bmc.OpPowerStatus()}, {"PowerOn", bmc.OpPowerOn()}} {
			metal, err := measure(fleet, targets, op.op, concurrency, runs)
			if err != nil {
				return err
			}
			anchorRuns := runs
			if cfg.latency > 0 {
				anchorRuns = 1
			}
			if skipAnchor {
				anchorRuns = 0
			}
			anchor, err := measure(fleet, targets, op.op, 1, anchorRuns)
			if err != nil {
				return err
			}
			fmt.Printf("| %s | %s | %v | %d | %.2f s (%d failed) | %.2f s (%d failed) | %.3f | %.0f |\n",
				op.name, transport, cfg.latency, n, metal.best.Seconds(), metal.failures, anchor.best.Seconds(), anchor.failures,
				metal.best.Seconds()/anchor.best.Seconds(), float64(n)/metal.best.Seconds())
		}
		fleet.Close()
	}
	return nil
}

// measure runs op over all targets runs times and keeps the best time.
// Power is switched off in the emulators before each run so PowerOn does
// real work every time.
func measure(fleet *bmcsim.Fleet, targets []bmc.Target, op bmc.Op, concurrency, runs int) (cell, error) {
	m, err := bmc.NewManager(bmc.Config{Concurrency: concurrency, Timeout: 30 * time.Second}, nil)
	if err != nil {
		return cell{}, err
	}
	c := cell{best: time.Duration(1<<63 - 1)}
	for r := 0; r < runs; r++ {
		for _, s := range fleet.Servers {
			s.SetPower(false)
		}
		var req0, res0 int64
		for _, s := range fleet.Servers {
			req0 += s.Requests()
			res0 += s.TLSResumed()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		start := time.Now()
		res := m.Each(ctx, targets, op)
		d := time.Since(start)
		cancel()
		var req1, res1 int64
		for _, s := range fleet.Servers {
			req1 += s.Requests()
			res1 += s.TLSResumed()
		}
		fmt.Fprintf(os.Stderr, "%s concurrency %d: %.2fs, %d requests, %d on resumed TLS sessions\n", op.Name, concurrency, d.Seconds(), req1-req0, res1-res0)
		maxAttempts, maxElapsed := 0, time.Duration(0)
		for _, x := range res {
			maxAttempts = max(maxAttempts, x.Attempts)
			maxElapsed = max(maxElapsed, x.Elapsed)
		}
		fmt.Fprintf(os.Stderr, "  max attempts %d, slowest target %.2fs\n", maxAttempts, maxElapsed.Seconds())
		failed := 0
		for _, x := range res {
			if x.Err != nil {
				failed++
				if failed == 1 {
					fmt.Fprintln(os.Stderr, "first failure:", x.Err)
				}
			}
		}
		if op.Name == "power on" && fleet.PoweredOn() != len(targets)-failed {
			return c, fmt.Errorf("power on: %d BMCs on, want %d", fleet.PoweredOn(), len(targets)-failed)
		}
		c.failures = max(c.failures, failed)
		c.best = min(c.best, d)
	}
	return c, nil
}

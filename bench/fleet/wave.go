package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/metal-iaas/metal/test/lab"
)

// fleetLab is one metald (peers on or off) with up to max agent hosts.
type fleetLab struct {
	o      options
	bins   lab.Binaries
	lab    *lab.Lab
	m      *lab.Metald
	hosts  []*lab.Host
	macs   []string
	agents string // agent work directory
}

func mac(i int) string      { return fmt.Sprintf("52:54:00:f1:%02x:%02x", i>>8, i&0xff) }
func hostAddr(i int) string { return fmt.Sprintf("10.66.0.%d", 20+i) }

// runMode runs every wave size with peers on or off, on a lab of its own.
func runMode(ctx context.Context, o options, bins lab.Binaries, img string, peers bool) ([]result, error) {
	mode := map[bool]string{false: "off", true: "on"}[peers]
	dir := filepath.Join(o.dir, "peers-"+mode)
	_ = os.RemoveAll(dir)
	l, err := lab.New(ctx, lab.Config{Name: "metalfleet", Dir: dir, Log: os.Stderr})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	m, err := l.StartMetald(ctx, lab.MetaldConfig{Bin: bins.Metald, AgentDir: dir, // no agent netboot here
		Extra: append([]string{"--peers=" + strconv.FormatBool(peers), "--log-level", "info"}, o.metald...)})
	if err != nil {
		return nil, err
	}
	f := &fleetLab{o: o, bins: bins, lab: l, m: m, agents: filepath.Join(dir, "agents")}
	logf("peers %s: uploading the image", mode)
	if out, err := f.ctl(ctx, "image", "upload", img, "--name", "img"); err != nil {
		return nil, fmt.Errorf("upload: %w\n%s", err, out)
	}
	maxN := 0
	for _, n := range o.ns {
		maxN = max(maxN, n)
	}
	for i := 1; i <= maxN; i++ {
		h, err := l.AddHost(ctx, fmt.Sprintf("a%d", i), hostAddr(i))
		if err != nil {
			return nil, err
		}
		if err := lab.Run(ctx, "ip", "-n", h.NS, "link", "set", "eth0", "address", mac(i)); err != nil {
			return nil, err
		}
		f.hosts, f.macs = append(f.hosts, h), append(f.macs, mac(i))
		if err := shape(ctx, h.NS, "eth0", o.rate); err != nil { // its upload
			return nil, err
		}
		if err := shape(ctx, l.NS, fmt.Sprintf("vh-a%d", i), o.rate); err != nil { // its download
			return nil, err
		}
	}
	if err := shape(ctx, l.NS, "br0", o.rate); err != nil { // metald's uplink
		return nil, err
	}
	var out []result
	for _, n := range o.ns {
		r, err := f.wave(ctx, n, peers)
		if err != nil {
			return out, fmt.Errorf("peers %s, %d machines: %w", mode, n, err)
		}
		logf("peers %s, %d machines: %.1f s, metald chunks %d bytes, peers %d bytes, failed %d", mode, n, r.seconds, r.chunkBytes, r.peerBytes, r.failed)
		out = append(out, r)
	}
	return out, nil
}

// shape puts a token bucket of rate on the egress of dev in namespace ns.
func shape(ctx context.Context, ns, dev, rate string) error {
	return lab.Run(ctx, "tc", "-n", ns, "qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate, "burst", "64kb", "latency", "100ms")
}

func (f *fleetLab) ctl(ctx context.Context, args ...string) (string, error) {
	out, err := f.m.Metalctl(ctx, f.bins.Metalctl, args...).CombinedOutput()
	return string(out), err
}

var (
	fromPeers  = regexp.MustCompile(`from_peers_bytes=(\d+)`)
	fromMetald = regexp.MustCompile(`from_metald_bytes=(\d+)`)
	sentBytes  = regexp.MustCompile(`Sent (\d+) bytes`)
	chunkBytes = regexp.MustCompile(`(?m)^metald_chunk_bytes_served_total ([0-9.e+]+)$`)
)

// wave provisions machines 1..n at once and measures it.
func (f *fleetLab) wave(ctx context.Context, n int, peers bool) (result, error) {
	r := result{peers: peers, n: n}
	names := make([]string, n)
	if err := os.RemoveAll(f.agents); err != nil {
		return r, err
	}
	for i := 1; i <= n; i++ {
		names[i-1] = fmt.Sprintf("h%d", i)
		_, _ = f.ctl(ctx, "machine", "rm", names[i-1])
		if out, err := f.ctl(ctx, "machine", "add", names[i-1], "--mac", f.macs[i-1], "--ip", hostAddr(i)); err != nil {
			return r, fmt.Errorf("machine add: %w\n%s", err, out)
		}
		if out, err := f.ctl(ctx, "machine", "edit", names[i-1], "--state", "ready"); err != nil {
			return r, fmt.Errorf("machine edit: %w\n%s", err, out)
		}
		if err := fakeMachine(filepath.Join(f.agents, names[i-1]), int64(f.o.diskMiB+64)<<20); err != nil {
			return r, err
		}
	}
	args := append([]string{"provision"}, names...)
	if out, err := f.ctl(ctx, append(args, "--image", "img", "--config-drive", "none", "--delta", "off")...); err != nil {
		return r, fmt.Errorf("provision: %w\n%s", err, out)
	}
	chunks0, sent0, err := f.egress(ctx)
	if err != nil {
		return r, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.o.timeout)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 1; i <= n; i++ {
		wg.Go(func() {
			dir := filepath.Join(f.agents, names[i-1])
			logFile, err := os.Create(filepath.Join(dir, "agent.log"))
			if err != nil {
				errs[i-1] = err
				return
			}
			defer logFile.Close()
			cmd := exec.CommandContext(ctx, "ip", "netns", "exec", f.hosts[i-1].NS, f.bins.Agent, "--url", f.m.URL,
				"--mac", f.macs[i-1], "--root", filepath.Join(dir, "root"), "--dev-dir", filepath.Join(dir, "dev"), "--once", "--debug")
			cmd.Stdout, cmd.Stderr = logFile, logFile
			errs[i-1] = cmd.Run()
		})
	}
	wg.Wait()
	r.seconds = time.Since(start).Seconds()
	chunks1, sent1, err := f.egress(ctx)
	if err != nil {
		return r, err
	}
	r.chunkBytes, r.egress = chunks1-chunks0, sent1-sent0
	for i, name := range names {
		b, _ := os.ReadFile(filepath.Join(f.agents, name, "agent.log"))
		if m := fromPeers.FindSubmatch(b); m != nil {
			v, _ := strconv.ParseInt(string(m[1]), 10, 64)
			r.peerBytes += v
		}
		if m := fromMetald.FindSubmatch(b); m != nil {
			v, _ := strconv.ParseInt(string(m[1]), 10, 64)
			r.serverBytes += v
		}
		if errs[i] != nil {
			logf("agent %s: %v (log %s)", name, errs[i], filepath.Join(f.agents, name, "agent.log"))
		}
	}
	out, err := f.ctl(ctx, "machine", "list", "-o", "json")
	if err != nil {
		return r, fmt.Errorf("machine list: %w\n%s", err, out)
	}
	var ms []struct{ Name, State string }
	if err := json.Unmarshal([]byte(out), &ms); err != nil {
		return r, fmt.Errorf("machine list: %w", err)
	}
	for _, m := range ms {
		if strings.HasPrefix(m.Name, "h") && m.State != "provisioned" {
			r.failed++
		}
	}
	return r, nil
}

// egress reads metald's chunk bytes served and the bytes sent through
// its uplink.
func (f *fleetLab) egress(ctx context.Context) (chunks, sent int64, err error) {
	metrics, err := f.m.Get(ctx, "/metrics")
	if err != nil {
		return 0, 0, err
	}
	if m := chunkBytes.FindStringSubmatch(metrics); m != nil {
		v, _ := strconv.ParseFloat(m[1], 64)
		chunks = int64(v)
	}
	tc, err := lab.Output(ctx, "tc", "-n", f.lab.NS, "-s", "qdisc", "show", "dev", "br0")
	if err != nil {
		return 0, 0, err
	}
	if m := sentBytes.FindStringSubmatch(tc); m != nil {
		sent, _ = strconv.ParseInt(m[1], 10, 64)
	}
	return chunks, sent, nil
}

// fakeMachine makes dir/dev/vda (a sparse disk of size bytes) and the
// sysfs entries the agent's inventory reads (dir/root/sys/block/vda).
func fakeMachine(dir string, size int64) error {
	blk := filepath.Join(dir, "root", "sys", "block", "vda")
	if err := os.MkdirAll(filepath.Join(blk, "device"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(blk, "size"), []byte(strconv.FormatInt(size/512, 10)+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "dev"), 0o755); err != nil {
		return err
	}
	d, err := os.Create(filepath.Join(dir, "dev", "vda"))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Truncate(size)
}

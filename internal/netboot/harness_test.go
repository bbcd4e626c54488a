package netboot

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metal-iaas/metal/test/testenv"
)

// This file is the network-namespace test bed: a server namespace with a
// bridge (IPv4 + IPv6 with router advertisements from radvd), tap devices
// for QEMU, and a client namespace joined by a veth pair. The boot services
// run in a helper process (this test binary re-executed under `ip netns
// exec`), so every socket they open — TFTP opens one per transfer — lives
// in the namespace. The helper reports inventory events as JSON lines.

const helperEnv = "METAL_NETBOOT_HELPER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		os.Exit(runHelper(spec))
	}
	if target := os.Getenv(floodEnv); target != "" {
		os.Exit(runFlood(target))
	}
	os.Exit(m.Run())
}

// require skips (or fails under METAL_REQUIRE_ALL=1) when a test cannot run.
func require(t testing.TB, ok bool, why string) {
	t.Helper()
	testenv.Require(t, ok, why)
}

func requireTool(t testing.TB, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	require(t, err == nil, fmt.Sprintf("missing %s: apt-get install %s", tool, pkg))
	return p
}

func requireRoot(t testing.TB) {
	t.Helper()
	require(t, os.Geteuid() == 0, "needs root for network namespaces")
	requireTool(t, "ip", "iproute2")
}

// Testbed addresses (namespaces are private, so every test can use them).
const (
	tbServer = "10.99.0.1"
	tbPrefix = "10.99.0.1/24"
	tbV6     = "fd99::1/64"
)

type testbed struct {
	t       *testing.T
	srv     string // server namespace (bridge br0, helper, QEMU)
	cli     string // client namespace (veth c0)
	dir     string
	ntap    int
	nhelper int
	radvd   *exec.Cmd
	mu      sync.Mutex
	extra   []*exec.Cmd
}

func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newTestbed(t *testing.T) *testbed {
	requireRoot(t)
	var b [3]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	tb := &testbed{t: t, srv: "mtnb-s-" + id, cli: "mtnb-c-" + id, dir: t.TempDir()}
	run(t, "ip", "netns", "add", tb.srv)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", tb.srv).Run() })
	run(t, "ip", "netns", "add", tb.cli)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", tb.cli).Run() })
	s, c := tb.srv, tb.cli
	for _, a := range [][]string{
		{"ip", "-n", s, "link", "set", "lo", "up"},
		{"ip", "-n", c, "link", "set", "lo", "up"},
		{"ip", "netns", "exec", s, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"},
		{"ip", "-n", s, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0"},
		{"ip", "-n", s, "addr", "add", tbPrefix, "dev", "br0"},
		{"ip", "-n", s, "addr", "add", tbV6, "dev", "br0", "nodad"},
		{"ip", "-n", s, "link", "set", "br0", "up"},
		{"ip", "-n", s, "link", "add", "v0", "type", "veth", "peer", "name", "c0", "netns", c},
		{"ip", "-n", s, "link", "set", "v0", "master", "br0", "up"},
		{"ip", "-n", c, "link", "set", "c0", "address", "02:00:00:00:00:c0", "up"},
	} {
		run(t, a...)
	}
	return tb
}

// startRA runs radvd on br0 so iPXE's IPv6 autoconfiguration finishes at
// once instead of timing out.
func (tb *testbed) startRA() {
	t := tb.t
	radvd := requireTool(t, "radvd", "radvd")
	conf := filepath.Join(tb.dir, "radvd.conf")
	os.WriteFile(conf, []byte("interface br0 {\n AdvSendAdvert on;\n MinRtrAdvInterval 3;\n MaxRtrAdvInterval 10;\n prefix fd99::/64 { AdvOnLink on; AdvAutonomous on; };\n};\n"), 0o644)
	tb.spawn("radvd", "ip", "netns", "exec", tb.srv, radvd, "-n", "-C", conf, "-p", filepath.Join(tb.dir, "radvd.pid"), "-m", "stderr")
}

// spawn starts a long-running command that Cleanup kills.
func (tb *testbed) spawn(name string, args ...string) *exec.Cmd {
	t := tb.t
	cmd := exec.Command(args[0], args[1:]...)
	logf, _ := os.Create(filepath.Join(tb.dir, name+".log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("--- %s log (tail) ---\n%s", name, tail(string(b), 3000))
		}
	})
	return cmd
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// addTap creates a tap device on the bridge for a QEMU NIC.
func (tb *testbed) addTap() string {
	tb.ntap++
	name := fmt.Sprintf("tap%d", tb.ntap)
	run(tb.t, "ip", "-n", tb.srv, "tuntap", "add", "dev", name, "mode", "tap")
	run(tb.t, "ip", "-n", tb.srv, "link", "set", name, "master", "br0", "up")
	return name
}

// helperSpec is what the helper process runs.
type helperSpec struct {
	Config   Config
	Machines []helperMachine
	HTTPAddr string
}

type helperMachine struct {
	MAC, Name, State, IP, IP6, Hostname, UUID string
}

// helper is a running boot-services process in the server namespace.
type helper struct {
	t      *testing.T
	cmd    *exec.Cmd
	mu     sync.Mutex
	events []Event
	notify chan struct{}
	done   chan struct{}
}

// startHelper runs the boot services in tb's server namespace.
func (tb *testbed) startHelper(spec helperSpec) *helper {
	t := tb.t
	if spec.HTTPAddr == "" {
		spec.HTTPAddr = tbServer + ":8080"
	}
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", tb.srv, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(js))
	tb.nhelper++
	logf, _ := os.Create(filepath.Join(tb.dir, fmt.Sprintf("helper%d.log", tb.nhelper)))
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper: %v", err)
	}
	h := &helper{t: t, cmd: cmd, notify: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var e Event
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				continue
			}
			h.mu.Lock()
			h.events = append(h.events, e)
			close(h.notify)
			h.notify = make(chan struct{})
			h.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("--- helper log (tail) ---\n%s", tail(string(b), 4000))
		}
	})
	if _, err := h.wait(15*time.Second, func(e Event) bool { return e.Kind == "ready" }); err != nil {
		t.Fatalf("helper did not become ready: %v", err)
	}
	return h
}

// wait returns the first event (in order) matching match.
func (h *helper) wait(d time.Duration, match func(Event) bool) (Event, error) {
	deadline := time.After(d)
	for {
		h.mu.Lock()
		for _, e := range h.events {
			if match(e) {
				h.mu.Unlock()
				return e, nil
			}
		}
		ch := h.notify
		h.mu.Unlock()
		select {
		case <-ch:
		case <-h.done:
			return Event{}, fmt.Errorf("helper exited")
		case <-deadline:
			return Event{}, fmt.Errorf("no matching event within %v", d)
		}
	}
}

func (h *helper) all() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Event(nil), h.events...)
}

// metrics stops the helper with SIGTERM and returns its final counters.
func (h *helper) metrics() map[string]float64 {
	h.cmd.Process.Signal(syscall.SIGTERM)
	e, err := h.wait(10*time.Second, func(e Event) bool { return e.Kind == "metrics" })
	if err != nil {
		h.t.Fatalf("no metrics from helper: %v", err)
	}
	// Let the process exit (and free its ports) before the test goes on.
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.t.Fatal("helper did not exit after SIGTERM")
	}
	h.cmd.Wait()
	out := map[string]float64{}
	for k, v := range e.Fields {
		if f, ok := v.(float64); ok {
			out[k] = f
		}
	}
	return out
}

// printingInventory reports every event on stdout for the parent test.
type printingInventory struct {
	*MemoryInventory
	mu  sync.Mutex
	enc *json.Encoder
}

func (p *printingInventory) RecordEvent(ctx context.Context, mac net.HardwareAddr, name, kind string, fields map[string]any) error {
	p.print(Event{MAC: macString(mac), Machine: name, Kind: kind, Fields: fields})
	return p.MemoryInventory.RecordEvent(ctx, mac, name, kind, fields)
}

func (p *printingInventory) print(e Event) {
	e.Time = time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.enc.Encode(e)
}

func runHelper(specJSON string) int {
	var spec helperSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "helper spec:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	inv := &printingInventory{MemoryInventory: NewMemoryInventory(), enc: json.NewEncoder(os.Stdout)}
	for _, m := range spec.Machines {
		mac, err := net.ParseMAC(m.MAC)
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper machine:", err)
			return 2
		}
		var ip, ip6 netip.Addr
		if m.IP != "" {
			ip = netip.MustParseAddr(m.IP)
		}
		if m.IP6 != "" {
			ip6 = netip.MustParseAddr(m.IP6)
		}
		inv.Add(Machine{MAC: mac, Name: m.Name, State: m.State, IP: ip, IP6: ip6, Hostname: m.Hostname}, m.UUID)
	}
	reg := prometheus.NewRegistry()
	svc, err := New(spec.Config, inv, reg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ln, err := net.Listen("tcp", spec.HTTPAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper http:", err)
		return 2
	}
	mux := http.NewServeMux()
	mux.Handle("/", svc.Handler())
	mux.HandleFunc("/agent/", func(w http.ResponseWriter, r *http.Request) {
		inv.print(Event{Kind: "http.get", Fields: map[string]any{"path": r.URL.Path}})
		http.NotFound(w, r)
	})
	go http.Serve(ln, mux)
	errc := make(chan error, 1)
	go func() { errc <- svc.Run(ctx) }()
	select {
	case err := <-errc:
		fmt.Fprintln(os.Stderr, "helper run:", err)
		return 1
	case <-time.After(300 * time.Millisecond):
	}
	inv.print(Event{Kind: "ready"})
	err = <-errc
	fams, _ := reg.Gather()
	fields := map[string]any{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			if c := m.GetCounter(); c != nil {
				fields[name] = c.GetValue()
			}
		}
	}
	inv.print(Event{Kind: "metrics", Fields: fields})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper run:", err)
		return 1
	}
	return 0
}

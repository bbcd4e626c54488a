package lab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Host is another machine on the lab's bridge: a network namespace of
// its own joined to the bridge by a veth pair, with a static address
// that metald never handed out. Tests use it as the hostile host on the
// provisioning network.
type Host struct {
	NS   string
	Addr string // its address on the bridge
}

// AddHost creates the host name with address addr (e.g. "10.66.0.66",
// or an IPv6 one of the lab's fd66::/64, taken without duplicate address
// detection) on the bridge; Close removes it.
func (l *Lab) AddHost(ctx context.Context, name, addr string) (*Host, error) {
	cidr := addr + "/24"
	var flags []string
	if strings.Contains(addr, ":") {
		cidr, flags = addr+"/64", []string{"nodad"}
	}
	h := &Host{NS: l.NS + "-" + name, Addr: addr}
	Cleanup(h.NS)
	if err := Run(ctx, "ip", "netns", "add", h.NS); err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.closers = append(l.closers, func() error { Cleanup(h.NS); return nil })
	l.mu.Unlock()
	outer, inner := "vh-"+name, "eth0"
	if len(outer) > 15 {
		outer = outer[:15]
	}
	for _, a := range [][]string{
		{"-n", l.NS, "link", "add", outer, "type", "veth", "peer", "name", inner, "netns", h.NS},
		{"-n", l.NS, "link", "set", outer, "master", bridge, "up"},
		{"-n", h.NS, "link", "set", "lo", "up"},
		append([]string{"-n", h.NS, "addr", "add", cidr, "dev", inner}, flags...),
		{"-n", h.NS, "link", "set", inner, "up"},
	} {
		if err := Run(ctx, "ip", a...); err != nil {
			return nil, fmt.Errorf("lab: host %s: %w", name, err)
		}
	}
	return h, nil
}

// Dial connects from inside the host's namespace.
func (h *Host) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNamespace(h.NS, func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// HTTPClient is an HTTP client whose connections start in the host.
func (h *Host) HTTPClient() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DialContext: h.Dial, DisableKeepAlives: true}}
}

// inNamespace runs fn on an OS thread switched into network namespace
// ns; sockets fn creates stay in that namespace.
func inNamespace(ns string, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := os.Open(filepath.Join("/var/run/netns", ns))
	if err != nil {
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns %s: %w", ns, err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// This thread is in the wrong namespace: never let it run Go code
		// again (a locked thread that is not unlocked dies with its
		// goroutine).
		runtime.LockOSThread()
		return fmt.Errorf("setns back: %w", err)
	}
	return ferr
}

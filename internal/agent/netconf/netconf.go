// Package netconf brings up the boot NIC with DHCPv4 (insomniacslk/dhcp's
// nclient4) or DHCPv6 (nclient6, dhcp6.go; SLAAC when no DHCPv6 server
// answers) and configures its address and default route over netlink.
package netconf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
)

// ErrNoLease is returned when no interface got a lease in time.
var ErrNoLease = errors.New("no DHCP lease")

// Lease is the configuration applied to one interface.
type Lease struct {
	Interface string
	MAC       string
	Address   net.IPNet
	Router    net.IP
	DNS       []net.IP
	Server    net.IP
}

// Options steer Configure.
type Options struct {
	// MAC selects the boot NIC; empty tries every non-loopback NIC with
	// link.
	MAC string
	// Timeout bounds the whole configuration (60 s when zero).
	Timeout time.Duration
	// ResolvConf, when set, is written with the lease's DNS servers.
	ResolvConf string
	// Family is the IP version to configure: 4 (DHCPv4), 6 (DHCPv6, or
	// SLAAC), or 0 for both at once, the first address winning. FamilyOf
	// derives it from the server URL.
	Family int
	Log    *slog.Logger
}

// Configure brings lo and the candidate NICs up, runs DHCP on them
// (concurrently) and applies the first lease obtained.
func Configure(ctx context.Context, o Options) (*Lease, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if lo, err := netlink.LinkByName("lo"); err == nil {
		_ = netlink.LinkSetUp(lo)
	}
	var cands []netlink.Link
	for ctx.Err() == nil {
		links, err := netlink.LinkList()
		if err != nil {
			return nil, fmt.Errorf("netconf: list links: %w", err)
		}
		cands = cands[:0]
		for _, l := range links {
			a := l.Attrs()
			if a.Flags&net.FlagLoopback != 0 || len(a.HardwareAddr) != 6 {
				continue
			}
			if o.MAC != "" && !strings.EqualFold(a.HardwareAddr.String(), o.MAC) {
				continue
			}
			cands = append(cands, l)
		}
		if len(cands) > 0 {
			break
		}
		log.Info("waiting for the boot NIC", "mac", o.MAC)
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("netconf: %w: no NIC with mac %q appeared", ErrNoLease, o.MAC)
	}
	for _, l := range cands {
		if err := netlink.LinkSetUp(l); err != nil {
			log.Warn("link up failed", "interface", l.Attrs().Name, "err", err)
		}
	}
	type got struct {
		link  netlink.Link
		apply func() (*Lease, error)
		err   error
	}
	ch := make(chan got, 2*len(cands))
	dctx, dcancel := context.WithCancel(ctx)
	defer dcancel()
	n := 0
	for _, l := range cands {
		if o.Family != 6 {
			n++
			go func(l netlink.Link) {
				lease, err := dhcp(dctx, l, log)
				ch <- got{l, func() (*Lease, error) { return apply(l, lease, o, log) }, err}
			}(l)
		}
		if o.Family != 4 {
			n++
			go func(l netlink.Link) {
				r, err := dhcp6(dctx, l, log)
				ch <- got{l, func() (*Lease, error) { return apply6(l, r, o, log) }, err}
			}(l)
		}
	}
	var errs []error
	for range n {
		g := <-ch
		if g.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", g.link.Attrs().Name, g.err))
			continue
		}
		dcancel()
		return g.apply()
	}
	return nil, fmt.Errorf("netconf: %w: %w", ErrNoLease, errors.Join(errs...))
}

// dhcp waits for carrier, then asks for a lease until ctx ends.
func dhcp(ctx context.Context, l netlink.Link, log *slog.Logger) (*nclient4.Lease, error) {
	name := l.Attrs().Name
	for ctx.Err() == nil {
		if cur, err := netlink.LinkByName(name); err == nil && cur.Attrs().OperState == netlink.OperUp {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	// A DHCP transaction id needs no cryptographic randomness, and the
	// DHCP library's getrandom(GRND_NONBLOCK) loop spins without end on
	// a kernel whose CRNG is not initialised yet (no RDRAND under TCG's
	// qemu64, no virtio-rng): take /dev/urandom, which never blocks.
	os.Setenv("UROOT_NOHWRNG", "1")
	var last error
	for ctx.Err() == nil {
		c, err := nclient4.New(name, nclient4.WithTimeout(3*time.Second), nclient4.WithRetry(2))
		if err != nil {
			return nil, fmt.Errorf("dhcp client: %w", err)
		}
		lease, err := c.Request(ctx)
		c.Close()
		if err == nil {
			return lease, nil
		}
		last = err
		log.Info("dhcp attempt failed", "interface", name, "err", err)
	}
	if last == nil {
		last = ctx.Err()
	}
	return nil, last
}

func apply(l netlink.Link, nl *nclient4.Lease, o Options, log *slog.Logger) (*Lease, error) {
	ack := nl.ACK
	mask := ack.SubnetMask()
	if mask == nil {
		mask = ack.YourIPAddr.DefaultMask()
	}
	lease := &Lease{
		Interface: l.Attrs().Name,
		MAC:       l.Attrs().HardwareAddr.String(),
		Address:   net.IPNet{IP: ack.YourIPAddr.To4(), Mask: mask},
		DNS:       ack.DNS(),
		Server:    ack.ServerIdentifier(),
	}
	if r := ack.Router(); len(r) > 0 {
		lease.Router = r[0]
	}
	addr := &netlink.Addr{IPNet: &lease.Address}
	if err := netlink.AddrReplace(l, addr); err != nil {
		return nil, fmt.Errorf("netconf: add %s to %s: %w", lease.Address.String(), lease.Interface, err)
	}
	if lease.Router != nil {
		rt := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: lease.Router}
		if err := netlink.RouteReplace(rt); err != nil {
			return nil, fmt.Errorf("netconf: default route via %s: %w", lease.Router, err)
		}
	}
	if o.ResolvConf != "" && len(lease.DNS) > 0 {
		var b strings.Builder
		for _, d := range lease.DNS {
			fmt.Fprintf(&b, "nameserver %s\n", d)
		}
		if dn := ack.DomainName(); dn != "" {
			fmt.Fprintf(&b, "search %s\n", dn)
		}
		if err := os.WriteFile(o.ResolvConf, []byte(b.String()), 0o644); err != nil {
			log.Warn("write resolv.conf", "err", err)
		}
	}
	log.Info("network configured", "interface", lease.Interface, "address", lease.Address.String(), "router", lease.Router, "server", lease.Server)
	return lease, nil
}

// LinksUp sets every non-loopback Ethernet interface up (so that LLDP
// frames reach them) and returns their names.
func LinksUp() ([]string, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("netconf: list links: %w", err)
	}
	var names []string
	var errs []error
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 || len(a.HardwareAddr) != 6 {
			continue
		}
		if err := netlink.LinkSetUp(l); err != nil {
			errs = append(errs, fmt.Errorf("%s up: %w", a.Name, err))
			continue
		}
		names = append(names, a.Name)
	}
	return names, errors.Join(errs...)
}

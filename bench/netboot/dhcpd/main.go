// Command dhcpd runs pkg/dhcp in full mode with an in-memory lease store,
// for the DHCP benchmark (bench/netboot/run.sh). Not a product binary.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metal-iaas/metal/pkg/dhcp"
)

func main() {
	iface := flag.String("iface", "", "interface to serve")
	server := flag.String("server", "", "our IPv4 address")
	subnet := flag.String("subnet", "", "subnet prefix, e.g. 10.99.0.0/16")
	start := flag.String("start", "", "pool start")
	end := flag.String("end", "", "pool end")
	workers := flag.Int("workers", 4, "DHCP workers")
	flag.Parse()
	if err := run(*iface, *server, *subnet, *start, *end, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "dhcpd:", err)
		os.Exit(1)
	}
}

func run(iface, server, subnet, start, end string, workers int) error {
	parse := func(s string) (netip.Addr, error) { return netip.ParseAddr(s) }
	sip, err := parse(server)
	if err != nil {
		return err
	}
	pfx, err := netip.ParsePrefix(subnet)
	if err != nil {
		return err
	}
	a, err := parse(start)
	if err != nil {
		return err
	}
	b, err := parse(end)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	alloc, err := dhcp.NewAllocator(context.Background(), dhcp.AllocatorConfig{ServerIP: sip, Subnet: pfx, RangeStart: a, RangeEnd: b,
		LeaseTime: time.Hour, Routers: []netip.Addr{sip}, DNS: []netip.Addr{sip}, Store: dhcp.NewMemoryStore(), Logger: log})
	if err != nil {
		return err
	}
	srv, err := dhcp.New(dhcp.Config{Interface: iface, Workers: workers, Queue: 4096, Registerer: prometheus.NewRegistry(), Logger: log,
		Handler: dhcp.HandlerFunc(func(ctx context.Context, r *dhcp.Request) (*dhcpv4.DHCPv4, error) { return alloc.Handle(ctx, r.Packet) })})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return srv.Run(ctx)
}

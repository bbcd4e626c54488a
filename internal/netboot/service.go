package netboot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/metal-iaas/metal/internal/trust"
	"github.com/metal-iaas/metal/ipxe"
	"github.com/metal-iaas/metal/pkg/bootfs"
	"github.com/metal-iaas/metal/pkg/dhcp"
	"github.com/metal-iaas/metal/pkg/pxe"
	"github.com/metal-iaas/metal/templates"
)

// Service runs DHCP and TFTP and serves the boot HTTP routes.
type Service struct {
	cfg      Config
	inv      Inventory
	log      *slog.Logger
	policy   pxe.Policy
	render   *pxe.Renderer
	grub     *pxe.GrubRenderer // the Secure Boot chain's configurations (grub.go)
	shim     *os.Root          // ShimDir, nil if none
	files    *bootfs.Files
	dhcp     *dhcp.Server       // nil in mode off
	v6       *service6          // DHCPv6 (dhcp6.go); nil when off
	alloc    *dhcp.Allocator    // full mode only
	tftp     *bootfs.TFTPServer // nil if TFTP is off
	counters *prometheus.CounterVec
	// scriptLimit bounds /boot.ipxe per source address; refusals
	// throttles the security events of refused requests.
	scriptLimit *trust.Limiter
	refusals    *trust.Throttle
	mu          sync.Mutex
	ipMAC       map[netip.Addr]net.HardwareAddr // for tftp.sent events
}

// New validates cfg and builds the services; nothing listens until Run.
// In full mode it loads the leases from inv.
func New(cfg Config, inv Inventory, reg prometheus.Registerer, log *slog.Logger) (*Service, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if inv == nil {
		return nil, errors.New("netboot: no inventory")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, inv: inv, log: log, policy: pxe.Policy{AdvertiseURL: cfg.AdvertiseURL, UEFIBoot: cfg.UEFIBoot}, ipMAC: map[netip.Addr]net.HardwareAddr{},
		scriptLimit: trust.NewLimiter(5, 50), refusals: trust.NewThrottle(0)}
	var err error
	if s.render, err = pxe.NewRenderer(templates.FS()); err != nil {
		return nil, err
	}
	if s.grub, err = pxe.NewGrubRenderer(templates.FS()); err != nil {
		return nil, err
	}
	if s.files, err = bootfs.NewFiles(cfg.TFTPRoot, ipxe.FS()); err != nil {
		return nil, err
	}
	if err := s.openShimDir(); err != nil {
		return nil, err
	}
	s.counters = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metal_netboot_decisions_total",
		Help: "Boot decisions, by outcome (script, tftp, http, unsupported_arch, unknown_ignored, unknown_mac6, discovered, address_only, refused_foreign, refused_rate).",
	}, []string{"outcome"})
	if reg != nil {
		if err := reg.Register(s.counters); err != nil {
			return nil, fmt.Errorf("netboot: register metrics: %w", err)
		}
	}
	if cfg.Mode == ModeFull {
		subnet := cfg.Subnet
		if !subnet.IsValid() {
			if subnet, err = interfacePrefix(cfg.Interface, cfg.ServerIP); err != nil {
				return nil, err
			}
		}
		s.cfg.Subnet = subnet
		s.alloc, err = dhcp.NewAllocator(context.Background(), dhcp.AllocatorConfig{
			ServerIP: cfg.ServerIP, Subnet: subnet, RangeStart: cfg.RangeStart, RangeEnd: cfg.RangeEnd,
			LeaseTime: cfg.LeaseTime, Routers: cfg.Router, DNS: cfg.DNS, Domain: cfg.Domain,
			Store: inv, Reservations: reservations{s: s}, Logger: log,
		})
		if err != nil {
			return nil, err
		}
	}
	if cfg.Mode != ModeOff {
		ports := []int{dhcp.ServerPort}
		if cfg.Mode == ModeProxy {
			ports = append(ports, dhcp.ProxyPort)
		}
		s.dhcp, err = dhcp.New(dhcp.Config{Interface: cfg.Interface, Ports: ports, Workers: cfg.DHCPWorkers,
			Handler: dhcp.HandlerFunc(s.ServeDHCP), Registerer: reg, Logger: log})
		if err != nil {
			return nil, err
		}
	}
	if s.v6, err = newService6(s, reg); err != nil {
		return nil, err
	}
	if cfg.TFTPAddr != "off" {
		s.tftp, err = bootfs.NewTFTPServer(bootfs.TFTPConfig{Addr: cfg.TFTPAddr, Files: s.files, Anticipate: cfg.TFTPAnticipate,
			Dynamic: s.openTFTP, OnSent: s.tftpSent, Registerer: reg, Logger: log})
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Subnet is the provisioning subnet in full mode (--interface's prefix
// unless configured), invalid otherwise.
func (s *Service) Subnet() netip.Prefix {
	if s.cfg.Mode != ModeFull {
		return netip.Prefix{}
	}
	return s.cfg.Subnet
}

// interfacePrefix finds the prefix of ip among iface's addresses.
func interfacePrefix(iface string, ip netip.Addr) (netip.Prefix, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("netboot: interface %q: %w", iface, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("netboot: interface %q addresses: %w", iface, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if p, err := netip.ParsePrefix(n.String()); err == nil && p.Addr().Unmap() == ip {
				return netip.PrefixFrom(ip, p.Bits()).Masked(), nil
			}
		}
	}
	return netip.Prefix{}, fmt.Errorf("netboot: %v is not an address of %s: set the subnet", ip, iface)
}

// Run serves DHCP and TFTP until ctx is done. Listener errors (port in use,
// no such interface) are returned at once.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	if s.dhcp != nil {
		g.Go(func() error { return s.dhcp.Run(ctx) })
	}
	if s.tftp != nil {
		g.Go(func() error { return s.tftp.Run(ctx) })
	}
	if s.v6 != nil {
		g.Go(func() error { return s.v6.srv.Run(ctx) })
	}
	g.Go(func() error { <-ctx.Done(); return nil })
	err := g.Wait()
	s.files.Close()
	if s.shim != nil {
		s.shim.Close()
	}
	return err
}

func (s *Service) tftpSent(remote *net.UDPAddr, file string, n int64) {
	ip, _ := netip.AddrFromSlice(remote.IP)
	ip = ip.Unmap()
	s.mu.Lock()
	mac := s.ipMAC[ip]
	s.mu.Unlock()
	if mac == nil && ip.Is4() {
		mac = arpLookup("/proc/net/arp", ip) // proxy mode: the address is not ours
	}
	if mac == nil {
		mac = dhcp.EUI64MAC(remote.IP) // PXEv6 from its link-local address
	}
	name := ""
	if mac != nil {
		if m, err := s.inv.MachineByMAC(context.Background(), mac); err == nil {
			name = m.Name
		}
	}
	s.event(context.Background(), mac, name, EventTFTPSent, map[string]any{"file": file, "bytes": n, "ip": ip.String()})
}

func (s *Service) rememberIP(ip net.IP, mac net.HardwareAddr) {
	a, ok := netip.AddrFromSlice(ip)
	if a = a.Unmap(); !ok || a.IsUnspecified() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ipMAC) > 65536 {
		clear(s.ipMAC)
	}
	s.ipMAC[a] = mac
}

func (s *Service) event(ctx context.Context, mac net.HardwareAddr, name, kind string, fields map[string]any) {
	if err := s.inv.RecordEvent(ctx, mac, name, kind, fields); err != nil {
		s.log.Warn("netboot: record event", "kind", kind, "mac", macString(mac), "err", err)
	}
}

// reservations adapts the inventory to dhcp.Reservations: a machine's
// IPv4 reservation, or with v6 its IPv6 one.
type reservations struct {
	s  *Service
	v6 bool
}

func (r reservations) Reservation(ctx context.Context, mac net.HardwareAddr) (dhcp.Reservation, bool, error) {
	m, err := r.s.inv.MachineByMAC(ctx, mac)
	if errors.Is(err, ErrNotFound) {
		return dhcp.Reservation{}, false, nil
	}
	if err != nil {
		return dhcp.Reservation{}, false, err
	}
	ip := m.IP
	if r.v6 {
		ip = m.IP6
	}
	return dhcp.Reservation{IP: ip, Hostname: m.Hostname}, true, nil
}

func macString(m net.HardwareAddr) string {
	if m == nil {
		return ""
	}
	return m.String()
}

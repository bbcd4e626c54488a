package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// Config configures a Server. Validate runs before any socket opens.
type Config struct {
	// Interface the listeners bind to with SO_BINDTODEVICE. Empty means
	// all interfaces (broadcast replies then follow the routing table).
	Interface string
	// Ports to listen on; default {67}. ProxyDHCP adds 4011.
	Ports []int
	// Workers is the number of goroutines handling packets (default 4).
	Workers int
	// Queue is how many received datagrams may wait for a worker
	// (default 256); beyond that datagrams are dropped and counted.
	Queue int
	// ClientPort and RelayPort are the destination ports of replies
	// (defaults 68 and 67); tests on unprivileged ports override them.
	ClientPort, RelayPort int
	// Handler decides every answer. Required.
	Handler Handler
	// Registerer receives the counters; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger; nil discards.
	Logger *slog.Logger
}

// withDefaults returns c with its zero fields filled.
func (c Config) withDefaults() Config {
	if len(c.Ports) == 0 {
		c.Ports = []int{ServerPort}
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	if c.Queue == 0 {
		c.Queue = 256
	}
	if c.ClientPort == 0 {
		c.ClientPort = ClientPort
	}
	if c.RelayPort == 0 {
		c.RelayPort = ServerPort
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports what is wrong with c; it changes nothing.
func (c Config) Validate() error {
	if c.Handler == nil {
		return errors.New("dhcp: config: no handler")
	}
	for _, p := range c.Ports {
		if p <= 0 || p > 65535 {
			return fmt.Errorf("dhcp: config: port %d out of range", p)
		}
	}
	if c.Workers < 0 || c.Queue < 0 {
		return errors.New("dhcp: config: negative workers or queue")
	}
	return nil
}

// Server receives DHCPv4 datagrams and answers through its Handler.
type Server struct {
	cfg Config
	m   *metrics
	log *slog.Logger
}

// New validates cfg and registers the counters. No socket is opened yet.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("dhcp: register metrics: %w", err)
	}
	return &Server{cfg: cfg, m: m, log: cfg.Logger}, nil
}

type datagram struct {
	conn net.PacketConn
	port int
	peer *net.UDPAddr
	buf  []byte
	n    int
}

const bufSize = 1500

// Listen opens the configured sockets. Run calls it; tests that must open
// sockets in another network namespace call it there and then Serve.
func (s *Server) Listen() ([]net.PacketConn, error) {
	var conns []net.PacketConn
	for _, p := range s.cfg.Ports {
		c, err := server4.NewIPv4UDPConn(s.cfg.Interface, &net.UDPAddr{IP: net.IPv4zero, Port: p})
		if err != nil {
			for _, o := range conns {
				o.Close()
			}
			return nil, fmt.Errorf("dhcp: listen on %q port %d: %w", s.cfg.Interface, p, err)
		}
		// Absorb bursts (a rack powering on) while workers are busy;
		// as root, beyond net.core.rmem_max.
		setRecvBuffer(c, 4<<20)
		conns = append(conns, c)
	}
	return conns, nil
}

// Run listens and serves until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	conns, err := s.Listen()
	if err != nil {
		return err
	}
	return s.Serve(ctx, conns)
}

// Serve reads from conns (which it closes on return) until ctx is done.
// conns[i] is taken to listen on s.cfg.Ports[i].
func (s *Server) Serve(ctx context.Context, conns []net.PacketConn) error {
	if len(conns) != len(s.cfg.Ports) {
		return fmt.Errorf("dhcp: serve: %d conns for %d ports", len(conns), len(s.cfg.Ports))
	}
	pool := &sync.Pool{New: func() any { return make([]byte, bufSize) }}
	queue := make(chan datagram, s.cfg.Queue)
	var workers sync.WaitGroup
	for range s.cfg.Workers {
		workers.Go(func() {
			for d := range queue {
				s.handle(ctx, d)
				pool.Put(d.buf) //nolint:staticcheck // slices are fine here
			}
		})
	}
	s.log.Info("dhcp: serving", "interface", s.cfg.Interface, "ports", s.cfg.Ports, "workers", s.cfg.Workers)
	var readers sync.WaitGroup
	errc := make(chan error, len(conns))
	for i, c := range conns {
		port := s.cfg.Ports[i]
		readers.Go(func() {
			for {
				buf := pool.Get().([]byte)
				n, peer, err := c.ReadFrom(buf)
				if err != nil {
					if ctx.Err() == nil {
						errc <- fmt.Errorf("dhcp: read port %d: %w", port, err)
					}
					return
				}
				up, _ := peer.(*net.UDPAddr)
				select {
				case queue <- datagram{conn: c, port: port, peer: up, buf: buf, n: n}:
				default:
					s.m.dropped.WithLabelValues("queue_full").Inc()
					pool.Put(buf) //nolint:staticcheck
				}
			}
		})
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	for _, c := range conns {
		c.Close()
	}
	readers.Wait()
	close(queue)
	workers.Wait()
	return err
}

// Parse decodes a datagram and checks it is a client request this server
// can answer; the error names what is wrong.
func Parse(b []byte) (*dhcpv4.DHCPv4, error) {
	p, err := dhcpv4.FromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("dhcp: parse: %w", err)
	}
	if p.OpCode != dhcpv4.OpcodeBootRequest {
		return nil, fmt.Errorf("dhcp: parse: op %d is not BOOTREQUEST", p.OpCode)
	}
	if len(p.ClientHWAddr) != 6 {
		return nil, fmt.Errorf("dhcp: parse: hardware address length %d, want 6", len(p.ClientHWAddr))
	}
	switch p.MessageType() {
	case dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeDecline,
		dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeInform:
	default:
		return nil, fmt.Errorf("dhcp: parse: message type %q is not a client request", p.MessageType())
	}
	return p, nil
}

func (s *Server) handle(ctx context.Context, d datagram) {
	p, err := Parse(d.buf[:d.n])
	if err != nil {
		s.m.malformed.Inc()
		s.log.Debug("dhcp: dropped malformed datagram", "peer", d.peer, "err", err)
		return
	}
	s.m.received.WithLabelValues(p.MessageType().String()).Inc()
	resp, err := s.cfg.Handler.ServeDHCP(ctx, &Request{Packet: p, Peer: d.peer, LocalPort: d.port, Interface: s.cfg.Interface})
	if err != nil {
		s.m.errors.Inc()
		s.log.Warn("dhcp: handler failed", "mac", p.ClientHWAddr.String(), "type", p.MessageType(), "err", err)
		return
	}
	if resp == nil {
		s.m.dropped.WithLabelValues("no_answer").Inc()
		return
	}
	dst := ReplyAddr(p, resp, d.peer, d.port)
	switch {
	case d.port == ProxyPort:
	case dst.Port == ServerPort:
		dst.Port = s.cfg.RelayPort
	case dst.Port == ClientPort:
		dst.Port = s.cfg.ClientPort
	}
	if _, err := d.conn.WriteTo(resp.ToBytes(), dst); err != nil {
		s.m.errors.Inc()
		s.log.Warn("dhcp: send reply", "mac", p.ClientHWAddr.String(), "dst", dst, "err", err)
		return
	}
	s.m.replies.WithLabelValues(resp.MessageType().String()).Inc()
	s.log.Debug("dhcp: replied", "mac", p.ClientHWAddr.String(), "type", resp.MessageType(), "yiaddr", resp.YourIPAddr, "dst", dst)
}

func setRecvBuffer(c *net.UDPConn, n int) {
	if rc, err := c.SyscallConn(); err == nil {
		var serr error
		rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) })
		if serr == nil {
			return
		}
	}
	c.SetReadBuffer(n)
}

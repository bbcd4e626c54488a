package dhcp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/server6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/ipv6"
)

// maxHops6 bounds relay nesting (RFC 8415 §7.6 HOP_COUNT_LIMIT).
const maxHops6 = 8

// Config6 configures a Server6. Validate runs before any socket opens.
type Config6 struct {
	// Interface the listener binds to (SO_BINDTODEVICE) and on which it
	// joins All_DHCP_Relay_Agents_and_Servers (ff02::1:2). Empty means
	// any interface and no multicast group: only unicast (relays, tests).
	Interface string
	// Addr is the listen address; default [::]:547.
	Addr *net.UDPAddr
	// ServerID is the server's DUID (option 2). Default: DUID-LL of
	// Interface's hardware address, else a random DUID-UUID.
	ServerID dhcpv6.DUID
	// Workers and Queue as in Config (defaults 4 and 256).
	Workers, Queue int
	// Handler decides every answer. Required.
	Handler Handler6
	// Registerer receives the counters; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger; nil discards.
	Logger *slog.Logger
}

func (c Config6) withDefaults() Config6 {
	if c.Addr == nil {
		c.Addr = &net.UDPAddr{IP: net.IPv6unspecified, Port: ServerPort6}
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	if c.Queue == 0 {
		c.Queue = 256
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports what is wrong with c; it changes nothing.
func (c Config6) Validate() error {
	switch {
	case c.Handler == nil:
		return errors.New("dhcp6: config: no handler")
	case c.Addr != nil && (c.Addr.Port <= 0 || c.Addr.Port > 65535):
		return fmt.Errorf("dhcp6: config: port %d out of range", c.Addr.Port)
	case c.Addr != nil && c.Addr.IP != nil && c.Addr.IP.To4() != nil:
		return fmt.Errorf("dhcp6: config: listen address %v is not IPv6", c.Addr.IP)
	case c.Workers < 0 || c.Queue < 0:
		return errors.New("dhcp6: config: negative workers or queue")
	}
	return nil
}

// Server6 receives DHCPv6 datagrams and answers through its Handler6.
type Server6 struct {
	cfg Config6
	m   *metrics
	log *slog.Logger
}

// New6 validates cfg, settles the server DUID and registers the counters.
// No socket is opened yet.
func New6(cfg Config6) (*Server6, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ServerID == nil {
		cfg.ServerID = defaultServerID(cfg.Interface)
	}
	m, err := newMetricsFor(cfg.Registerer, "dhcp6", "DHCPv6")
	if err != nil {
		return nil, fmt.Errorf("dhcp6: register metrics: %w", err)
	}
	return &Server6{cfg: cfg, m: m, log: cfg.Logger}, nil
}

// ServerID is the server's DUID.
func (s *Server6) ServerID() dhcpv6.DUID { return s.cfg.ServerID }

func defaultServerID(iface string) dhcpv6.DUID {
	if ifi, err := net.InterfaceByName(iface); err == nil && len(ifi.HardwareAddr) == 6 {
		return &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: ifi.HardwareAddr}
	}
	var u dhcpv6.DUIDUUID
	rand.Read(u.UUID[:])
	return &u
}

// Listen opens the socket and joins ff02::1:2 on the interface. Run calls
// it; tests that must open it in another network namespace call it there
// and then Serve.
func (s *Server6) Listen() (net.PacketConn, error) {
	c, err := server6.NewIPv6UDPConn(s.cfg.Interface, s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dhcp6: listen on %q %v: %w", s.cfg.Interface, s.cfg.Addr, err)
	}
	if s.cfg.Interface != "" {
		ifi, err := net.InterfaceByName(s.cfg.Interface)
		if err == nil {
			err = ipv6.NewPacketConn(c).JoinGroup(ifi, &net.UDPAddr{IP: dhcpv6.AllDHCPRelayAgentsAndServers})
		}
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("dhcp6: join ff02::1:2 on %s: %w", s.cfg.Interface, err)
		}
	}
	setRecvBuffer(c, 4<<20)
	return c, nil
}

// Run listens and serves until ctx is done.
func (s *Server6) Run(ctx context.Context) error {
	c, err := s.Listen()
	if err != nil {
		return err
	}
	return s.Serve(ctx, c)
}

// Serve reads from conn (which it closes on return) until ctx is done.
func (s *Server6) Serve(ctx context.Context, conn net.PacketConn) error {
	pool := &sync.Pool{New: func() any { return make([]byte, bufSize6) }}
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
	s.log.Info("dhcp6: serving", "interface", s.cfg.Interface, "addr", s.cfg.Addr, "workers", s.cfg.Workers)
	errc := make(chan error, 1)
	var reader sync.WaitGroup
	reader.Go(func() {
		for {
			buf := pool.Get().([]byte)
			n, peer, err := conn.ReadFrom(buf)
			if err != nil {
				if ctx.Err() == nil {
					errc <- fmt.Errorf("dhcp6: read: %w", err)
				}
				return
			}
			up, _ := peer.(*net.UDPAddr)
			select {
			case queue <- datagram{conn: conn, peer: up, buf: buf, n: n}:
			default:
				s.m.dropped.WithLabelValues("queue_full").Inc()
				pool.Put(buf) //nolint:staticcheck
			}
		}
	})
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	conn.Close()
	reader.Wait()
	close(queue)
	workers.Wait()
	return err
}

// bufSize6: DHCPv6 has no 1500-byte habit; relayed messages grow.
const bufSize6 = 4096

// Parse6 decodes a datagram sent to a server: a client message, or one
// inside at most eight Relay-forward layers. It checks what RFC 8415 §16
// asks of each client message type; the error names what is wrong.
func Parse6(b []byte) (*dhcpv6.Message, *dhcpv6.RelayMessage, error) {
	p, err := dhcpv6.FromBytes(b)
	if err != nil {
		return nil, nil, fmt.Errorf("dhcp6: parse: %w", err)
	}
	var relay *dhcpv6.RelayMessage
	msg, ok := p.(*dhcpv6.Message)
	if !ok {
		relay = p.(*dhcpv6.RelayMessage)
		cur := p
		for hops := 0; ; hops++ {
			r, ok := cur.(*dhcpv6.RelayMessage)
			if !ok {
				break
			}
			if hops >= maxHops6 || r.MessageType != dhcpv6.MessageTypeRelayForward {
				return nil, nil, fmt.Errorf("dhcp6: parse: relay message %s at depth %d", r.MessageType, hops)
			}
			if cur = r.Options.RelayMessage(); cur == nil {
				return nil, nil, errors.New("dhcp6: parse: relay-forward without a relay message option")
			}
		}
		msg = cur.(*dhcpv6.Message)
	}
	cid := msg.GetOneOption(dhcpv6.OptionClientID) != nil
	sid := msg.GetOneOption(dhcpv6.OptionServerID) != nil
	switch msg.MessageType {
	case dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeConfirm, dhcpv6.MessageTypeRebind:
		if !cid || sid {
			return nil, nil, fmt.Errorf("dhcp6: parse: %s needs a client ID and no server ID", msg.MessageType)
		}
	case dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRelease, dhcpv6.MessageTypeDecline:
		if !cid || !sid {
			return nil, nil, fmt.Errorf("dhcp6: parse: %s needs a client ID and a server ID", msg.MessageType)
		}
	case dhcpv6.MessageTypeInformationRequest:
	default:
		return nil, nil, fmt.Errorf("dhcp6: parse: message type %s is not a client message", msg.MessageType)
	}
	if cid && msg.Options.ClientID() == nil {
		return nil, nil, errors.New("dhcp6: parse: client ID is not a valid DUID")
	}
	return msg, relay, nil
}

func (s *Server6) handle(ctx context.Context, d datagram) {
	msg, relay, err := Parse6(d.buf[:d.n])
	if err != nil {
		s.m.malformed.Inc()
		s.log.Debug("dhcp6: dropped malformed datagram", "peer", d.peer, "err", err)
		return
	}
	s.m.received.WithLabelValues(msg.MessageType.String()).Inc()
	if sid := msg.Options.ServerID(); sid != nil && !sid.Equal(s.cfg.ServerID) {
		s.m.dropped.WithLabelValues("other_server").Inc()
		return
	}
	req := &Request6{Message: msg, Relay: relay, Peer: d.peer, Interface: s.cfg.Interface}
	var peerIP net.IP
	if d.peer != nil {
		peerIP = d.peer.IP
	}
	req.MAC, req.MACSource = ClientMAC6(msg, relay, peerIP)
	resp, err := s.cfg.Handler.ServeDHCPv6(ctx, req)
	if err != nil {
		s.m.errors.Inc()
		s.log.Warn("dhcp6: handler failed", "mac", macOrNone(req.MAC), "type", msg.MessageType, "err", err)
		return
	}
	if resp == nil {
		s.m.dropped.WithLabelValues("no_answer").Inc()
		return
	}
	resp.UpdateOption(dhcpv6.OptServerID(s.cfg.ServerID))
	var out dhcpv6.DHCPv6 = resp
	if relay != nil {
		if out, err = dhcpv6.NewRelayReplFromRelayForw(relay, resp); err != nil {
			s.m.errors.Inc()
			s.log.Warn("dhcp6: wrap relay reply", "err", err)
			return
		}
	}
	if _, err := d.conn.WriteTo(out.ToBytes(), d.peer); err != nil {
		s.m.errors.Inc()
		s.log.Warn("dhcp6: send reply", "mac", macOrNone(req.MAC), "dst", d.peer, "err", err)
		return
	}
	s.m.replies.WithLabelValues(resp.MessageType.String()).Inc()
	s.log.Debug("dhcp6: replied", "mac", macOrNone(req.MAC), "type", resp.MessageType, "dst", d.peer)
}

func macOrNone(m net.HardwareAddr) string {
	if m == nil {
		return "unknown"
	}
	return m.String()
}

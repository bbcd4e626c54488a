package dhcp

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// startLoopback runs a full-mode server on a loopback port. Replies to
// relayed requests go to giaddr (127.0.0.1) at the client socket's port.
func startLoopback(t *testing.T) (*net.UDPConn, *net.UDPAddr, *Server) {
	t.Helper()
	client, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	probe, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).Port
	probe.Close()
	now := t0
	alloc, err := NewAllocator(context.Background(), AllocatorConfig{
		ServerIP: netip.MustParseAddr("127.0.0.1"), Subnet: netip.MustParsePrefix("127.0.0.0/8"),
		RangeStart: netip.MustParseAddr("127.0.0.100"), RangeEnd: netip.MustParseAddr("127.0.0.200"),
		LeaseTime: time.Hour, Store: NewMemoryStore(), Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Ports: []int{port}, Workers: 2, Queue: 64, RelayPort: client.LocalAddr().(*net.UDPAddr).Port,
		Handler:    HandlerFunc(func(ctx context.Context, r *Request) (*dhcpv4.DHCPv4, error) { return alloc.Handle(ctx, r.Packet) }),
		Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	// Listen, then serve: the socket is bound before the first packet.
	conns, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, conns) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return client, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, srv
}

func exchange(t *testing.T, c *net.UDPConn, to *net.UDPAddr, p *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	t.Helper()
	buf := make([]byte, 1500)
	for try := 0; try < 5; try++ {
		if _, err := c.WriteTo(p.ToBytes(), to); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				break
			}
			r, err := dhcpv4.FromBytes(buf[:n])
			if err == nil && r.TransactionID == p.TransactionID {
				return r
			}
		}
	}
	t.Fatalf("no reply to %s", p.MessageType())
	return nil
}

func TestServerRelayedDORAOnLoopback(t *testing.T) {
	c, to, srv := startLoopback(t)
	relay := dhcpv4.WithGatewayIP(net.IPv4(127, 0, 0, 1))
	offer := exchange(t, c, to, pkt(t, dhcpv4.MessageTypeDiscover, mac(1), relay))
	if offer.MessageType() != dhcpv4.MessageTypeOffer || offer.YourIPAddr.String() != "127.0.0.100" {
		t.Fatalf("offer: %s", offer.Summary())
	}
	ack := exchange(t, c, to, pkt(t, dhcpv4.MessageTypeRequest, mac(1), relay,
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(127, 0, 0, 1))),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr))))
	if ack.MessageType() != dhcpv4.MessageTypeAck || !ack.YourIPAddr.Equal(offer.YourIPAddr) {
		t.Fatalf("ack: %s", ack.Summary())
	}
	// The worker counts a reply once it is sent, which can be just after
	// the client has read it.
	got := counterValue(srv.m.replies.WithLabelValues("ACK"))
	for deadline := time.Now().Add(5 * time.Second); got < 1 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		got = counterValue(srv.m.replies.WithLabelValues("ACK"))
	}
	if got != 1 {
		t.Errorf("ACK counter = %v", got)
	}
}

// TestServerSurvivesRandomDatagrams sends 10,000 random and mutated
// datagrams, then checks a real exchange still works and the malformed
// counter moved.
func TestServerSurvivesRandomDatagrams(t *testing.T) {
	c, to, srv := startLoopback(t)
	rng := rand.New(rand.NewPCG(1, 2))
	valid := pkt(t, dhcpv4.MessageTypeDiscover, mac(9)).ToBytes()
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < 10000 && time.Now().Before(deadline); i++ {
		var b []byte
		if i%2 == 0 {
			b = make([]byte, rng.IntN(700))
			for j := range b {
				b[j] = byte(rng.UintN(256))
			}
		} else {
			b = append([]byte(nil), valid...)
			for k := 0; k < 1+rng.IntN(8); k++ {
				b[rng.IntN(len(b))] = byte(rng.UintN(256))
			}
			b = b[:rng.IntN(len(b))]
		}
		c.WriteTo(b, to)
		if i%200 == 0 {
			time.Sleep(2 * time.Millisecond) // stay under the queue bound most of the time
		}
	}
	relay := dhcpv4.WithGatewayIP(net.IPv4(127, 0, 0, 1))
	offer := exchange(t, c, to, pkt(t, dhcpv4.MessageTypeDiscover, mac(1), relay))
	if offer.MessageType() != dhcpv4.MessageTypeOffer {
		t.Fatalf("after the flood: %s", offer.Summary())
	}
	if got := counterValue(srv.m.malformed); got < 1000 {
		t.Errorf("malformed counter = %v, want ≥ 1000", got)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

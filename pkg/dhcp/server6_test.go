package dhcp

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/prometheus/client_golang/prometheus"
)

var prefix6 = netip.MustParsePrefix("fd00:6::/64")

func newTestAllocator6(t testing.TB, store LeaseStore, now *time.Time) *Allocator6 {
	t.Helper()
	a, err := NewAllocator6(context.Background(), Allocator6Config{
		Prefix: prefix6, ServerIP: netip.MustParseAddr("fd00:6::1"),
		RangeStart: netip.MustParseAddr("fd00:6::100"), RangeEnd: netip.MustParseAddr("fd00:6::1ff"),
		LeaseTime: time.Hour, Store: store, Now: func() time.Time { return *now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// startLoopback6 runs a full-mode DHCPv6 server on [::1] at a free port.
func startLoopback6(t *testing.T) (*net.UDPConn, *net.UDPAddr, *Server6) {
	t.Helper()
	client, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	probe, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).Port
	probe.Close()
	now := t0
	alloc := newTestAllocator6(t, NewMemoryStore(), &now)
	srv, err := New6(Config6{Addr: &net.UDPAddr{IP: net.IPv6loopback, Port: port}, Workers: 2, Queue: 64,
		Handler:    Handler6Func(alloc.Handle),
		Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, conn) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return client, &net.UDPAddr{IP: net.IPv6loopback, Port: port}, srv
}

func exchange6(t *testing.T, c *net.UDPConn, to *net.UDPAddr, p dhcpv6.DHCPv6) dhcpv6.DHCPv6 {
	t.Helper()
	want, _ := dhcpv6.GetTransactionID(p)
	buf := make([]byte, 4096)
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
			r, err := dhcpv6.FromBytes(buf[:n])
			if id, _ := dhcpv6.GetTransactionID(r); err == nil && id == want {
				return r
			}
		}
	}
	t.Fatalf("no reply to %s", p.Type())
	return nil
}

func solicit6(t testing.TB, hw net.HardwareAddr) *dhcpv6.Message {
	t.Helper()
	s, err := dhcpv6.NewSolicit(hw, dhcpv6.WithClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: hw}))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func iaAddr(t *testing.T, m *dhcpv6.Message) netip.Addr {
	t.Helper()
	ia := m.Options.OneIANA()
	if ia == nil || ia.Options.OneAddress() == nil {
		t.Fatalf("no IA_NA address in %s", m.Summary())
	}
	a, _ := netip.AddrFromSlice(ia.Options.OneAddress().IPv6Addr)
	return a
}

// TestServer6SolicitRequestOnLoopback: the four-message exchange, then a
// Renew, over a real socket; the server ID is added, a Request for
// another server is ignored.
func TestServer6SolicitRequestOnLoopback(t *testing.T) {
	c, to, srv := startLoopback6(t)
	hw := net.HardwareAddr{2, 0, 0, 0, 6, 1}
	adv := exchange6(t, c, to, solicit6(t, hw)).(*dhcpv6.Message)
	if adv.MessageType != dhcpv6.MessageTypeAdvertise || iaAddr(t, adv) != netip.MustParseAddr("fd00:6::100") {
		t.Fatalf("advertise: %s", adv.Summary())
	}
	if !adv.Options.ServerID().Equal(srv.ServerID()) {
		t.Fatalf("server ID %v, want %v", adv.Options.ServerID(), srv.ServerID())
	}
	req, err := dhcpv6.NewRequestFromAdvertise(adv)
	if err != nil {
		t.Fatal(err)
	}
	rep := exchange6(t, c, to, req).(*dhcpv6.Message)
	if rep.MessageType != dhcpv6.MessageTypeReply || iaAddr(t, rep) != netip.MustParseAddr("fd00:6::100") {
		t.Fatalf("reply: %s", rep.Summary())
	}
	renew := *req
	renew.MessageType = dhcpv6.MessageTypeRenew
	renew.TransactionID = dhcpv6.TransactionID{9, 9, 9}
	if rep := exchange6(t, c, to, &renew).(*dhcpv6.Message); iaAddr(t, rep) != netip.MustParseAddr("fd00:6::100") {
		t.Fatalf("renew: %s", rep.Summary())
	}
	// A second client gets the next address.
	adv2 := exchange6(t, c, to, solicit6(t, net.HardwareAddr{2, 0, 0, 0, 6, 2})).(*dhcpv6.Message)
	if iaAddr(t, adv2) != netip.MustParseAddr("fd00:6::101") {
		t.Fatalf("second client: %s", adv2.Summary())
	}
}

// TestServer6Relayed: a Relay-forward is answered with a Relay-reply to
// the relay, and the MAC comes from the relay's link-layer option when
// the DUID does not carry one.
func TestServer6Relayed(t *testing.T) {
	c, to, _ := startLoopback6(t)
	hw := net.HardwareAddr{2, 0, 0, 0, 6, 3}
	sol, _ := dhcpv6.NewSolicit(hw, dhcpv6.WithClientID(&dhcpv6.DUIDUUID{UUID: [16]byte{1, 2, 3}}))
	fw, err := dhcpv6.EncapsulateRelay(sol, dhcpv6.MessageTypeRelayForward, net.ParseIP("fd00:6::2"), net.ParseIP("fe80::1234"))
	if err != nil {
		t.Fatal(err)
	}
	fw.AddOption(dhcpv6.OptClientLinkLayerAddress(iana.HWTypeEthernet, hw))
	r := exchange6(t, c, to, fw)
	rr, ok := r.(*dhcpv6.RelayMessage)
	if !ok || rr.MessageType != dhcpv6.MessageTypeRelayReply {
		t.Fatalf("want a relay-reply, got %s", r.Summary())
	}
	inner, err := rr.GetInnerMessage()
	if err != nil {
		t.Fatal(err)
	}
	if iaAddr(t, inner) != netip.MustParseAddr("fd00:6::100") {
		t.Fatalf("relayed advertise: %s", inner.Summary())
	}
}

// TestServer6SurvivesRandomDatagrams sends 10,000 random and mutated
// datagrams, checks they are counted as malformed, and that a real
// exchange still works.
func TestServer6SurvivesRandomDatagrams(t *testing.T) {
	c, to, srv := startLoopback6(t)
	rng := rand.New(rand.NewPCG(6, 6))
	valid := solicit6(t, net.HardwareAddr{2, 0, 0, 0, 6, 9}).ToBytes()
	deadline := time.Now().Add(20 * time.Second)
	sent := 0
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
		sent++
		if i%200 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	adv := exchange6(t, c, to, solicit6(t, net.HardwareAddr{2, 0, 0, 0, 6, 1})).(*dhcpv6.Message)
	if adv.MessageType != dhcpv6.MessageTypeAdvertise {
		t.Fatalf("after the flood: %s", adv.Summary())
	}
	if got := counterValue(srv.m.malformed); got < 1000 {
		t.Errorf("malformed counter = %v after %d datagrams, want ≥ 1000", got, sent)
	}
}

func TestClientMAC6(t *testing.T) {
	hw := net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}
	llt, _ := dhcpv6.NewSolicit(hw, dhcpv6.WithClientID(&dhcpv6.DUIDLLT{HWType: iana.HWTypeEthernet, LinkLayerAddr: hw}))
	uuid, _ := dhcpv6.NewSolicit(hw, dhcpv6.WithClientID(&dhcpv6.DUIDUUID{}))
	for _, tc := range []struct {
		name string
		msg  *dhcpv6.Message
		peer string
		want string
		src  string
	}{
		{"duid-llt", llt, "fe80::1", hw.String(), MACFromDUID},
		{"uuid+eui64", uuid, "fe80::5054:ff:fe12:3456", hw.String(), MACFromLinkLocal},
		{"uuid+stable-privacy", uuid, "fe80::1c2d:3e4f:5a6b:7c8d", "", ""},
		{"uuid+global", uuid, "fd00::5054:ff:fe12:3456", "", ""},
	} {
		got, src := ClientMAC6(tc.msg, nil, net.ParseIP(tc.peer))
		if (got == nil && tc.want != "") || (got != nil && got.String() != tc.want) || src != tc.src {
			t.Errorf("%s: got %v (%s), want %q (%s)", tc.name, got, src, tc.want, tc.src)
		}
	}
}

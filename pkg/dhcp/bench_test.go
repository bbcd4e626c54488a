package dhcp

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// BenchmarkDORA measures parse + allocate + serialise for one DISCOVER and
// one REQUEST over 1,000 clients (the CPU cost per exchange behind the
// perfdhcp figures in BENCHMARKS.md).
func BenchmarkDORA(b *testing.B) {
	now := t0
	a := newTestAllocatorSized(&now)
	var disc, req [1000][]byte
	for i := range 1000 {
		hw := net.HardwareAddr{2, 0, 0, 0, byte(i >> 8), byte(i)}
		d, _ := dhcpv4.NewDiscovery(hw)
		disc[i] = d.ToBytes()
		r, _ := dhcpv4.NewDiscovery(hw, dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 0, 0, 1))))
		req[i] = r.ToBytes()
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % 1000
		p, _ := Parse(disc[k])
		o, _ := a.Handle(ctx, p)
		q, _ := Parse(req[k])
		q.UpdateOption(dhcpv4.OptRequestedIPAddress(o.YourIPAddr))
		ack, _ := a.Handle(ctx, q)
		_ = ack.ToBytes()
	}
}

func newTestAllocatorSized(now *time.Time) *Allocator {
	a, err := NewAllocator(context.Background(), AllocatorConfig{
		ServerIP: mustAddr("10.0.0.1"), Subnet: mustPrefix("10.0.0.0/16"),
		RangeStart: mustAddr("10.0.1.0"), RangeEnd: mustAddr("10.0.20.255"),
		LeaseTime: time.Hour, Store: NewMemoryStore(), Now: func() time.Time { return *now },
	})
	if err != nil {
		panic(err)
	}
	return a
}

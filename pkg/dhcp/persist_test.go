package dhcp

import (
	"context"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// slowStore blocks the first Put of one MAC until release is closed.
type slowStore struct {
	*MemoryStore
	slow    string
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func newSlowStore(slow net.HardwareAddr) *slowStore {
	return &slowStore{MemoryStore: NewMemoryStore(), slow: slow.String(), entered: make(chan struct{}), release: make(chan struct{})}
}

func (s *slowStore) Put(ctx context.Context, l Lease) error {
	if l.MAC.String() == s.slow {
		first := false
		s.once.Do(func() { first = true; close(s.entered) })
		if first {
			<-s.release
		}
	}
	return s.MemoryStore.Put(ctx, l)
}

type answer struct {
	resp *dhcpv4.DHCPv4
	err  error
}

// handleAsync runs Handle in a goroutine.
func handleAsync(a *Allocator, p *dhcpv4.DHCPv4) <-chan answer {
	ch := make(chan answer, 1)
	go func() {
		r, err := a.Handle(context.Background(), p)
		ch <- answer{r, err}
	}()
	return ch
}

func wait(t *testing.T, what string, ch <-chan answer) *dhcpv4.DHCPv4 {
	t.Helper()
	select {
	case a := <-ch:
		if a.err != nil {
			t.Fatalf("%s: %v", what, a.err)
		}
		return a.resp
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no answer while another client's lease write is blocked", what)
	}
	return nil
}

func answered(p *dhcpv4.DHCPv4) string {
	if p == nil {
		return "none"
	}
	return p.MessageType().String() + " " + p.YourIPAddr.String()
}

// TestSlowStoreBlocksOnlyItsClient: while one client's lease write hangs,
// other clients get their offers and ACKs, never the address being
// written; the blocked client gets its ACK once the write returns.
func TestSlowStoreBlocksOnlyItsClient(t *testing.T) {
	now := t0
	store := newSlowStore(mac(1))
	a := newTestAllocator(t, store, &now)
	server := dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 0, 0, 1)))
	want := func(ip string) dhcpv4.Modifier {
		return dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(ip)))
	}
	slow := handleAsync(a, pkt(t, dhcpv4.MessageTypeRequest, mac(1), server, want("10.0.0.100")))
	select {
	case <-store.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow client's lease never reached the store")
	}
	for _, c := range []struct {
		name string
		p    *dhcpv4.DHCPv4
		want string
	}{
		{"other discover", pkt(t, dhcpv4.MessageTypeDiscover, mac(2), want("10.0.0.100")), "OFFER 10.0.0.101"},
		{"other takes the address being written", pkt(t, dhcpv4.MessageTypeRequest, mac(3), server, want("10.0.0.100")), "NAK 0.0.0.0"},
		{"other request", pkt(t, dhcpv4.MessageTypeRequest, mac(2), server, want("10.0.0.101")), "ACK 10.0.0.101"},
	} {
		if got := answered(wait(t, c.name, handleAsync(a, c.p))); got != c.want {
			t.Fatalf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	select {
	case r := <-slow:
		t.Fatalf("ACK sent before its lease was written: %s %v", answered(r.resp), r.err)
	default:
	}
	close(store.release)
	if got := answered(wait(t, "slow client", slow)); got != "ACK 10.0.0.100" {
		t.Fatalf("slow client: %s", got)
	}
	for m, ip := range map[byte]string{1: "10.0.0.100", 2: "10.0.0.101"} {
		if l, err := store.Get(context.Background(), mac(m)); err != nil || l.State != LeaseBound || l.IP.String() != ip {
			t.Fatalf("stored lease of %s: %+v %v", mac(m), l, err)
		}
	}
}

// TestOneMACWritesInDecisionOrder: a RELEASE decided while the same
// MAC's lease is still being written is written after it, so the store
// ends with the release, not the older bound lease.
func TestOneMACWritesInDecisionOrder(t *testing.T) {
	now := t0
	store := newSlowStore(mac(1))
	a := newTestAllocator(t, store, &now)
	server := dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 0, 0, 1)))
	bind := handleAsync(a, pkt(t, dhcpv4.MessageTypeRequest, mac(1), server,
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP("10.0.0.100")))))
	<-store.entered
	release := handleAsync(a, pkt(t, dhcpv4.MessageTypeRelease, mac(1), dhcpv4.WithClientIP(net.ParseIP("10.0.0.100"))))
	// Wait (bounded, no sleep) until the release is decided and staged.
	deadline := time.Now().Add(10 * time.Second)
	for {
		a.mu.Lock()
		w := a.writers[mac(1).String()]
		staged := w != nil && w.refs == 2
		a.mu.Unlock()
		if staged {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the release was never staged")
		}
		runtime.Gosched()
	}
	close(store.release)
	if got := answered(wait(t, "bind", bind)); got != "ACK 10.0.0.100" {
		t.Fatalf("bind: %s", got)
	}
	wait(t, "release", release)
	if l, err := store.Get(context.Background(), mac(1)); err != nil || l.State != LeaseReleased {
		t.Fatalf("stored lease %+v %v, want released", l, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.writers) != 0 {
		t.Fatalf("%d MAC writers left after every write returned", len(a.writers))
	}
}

// TestStaleDeletionWaitsForNobody: deleting the record of a MAC whose
// address was taken over does not wait while that MAC's record is being
// written; it stays staged and goes out with a later flush.
func TestStaleDeletionWaitsForNobody(t *testing.T) {
	now := t0
	store := NewMemoryStore()
	a := newTestAllocator(t, store, &now)
	old := Lease{MAC: mac(1), IP: mustAddr("10.0.0.100"), Expires: t0, State: LeaseBound}
	if err := store.Put(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	a.index(old)
	a.index(Lease{MAC: mac(2), IP: old.IP, Expires: t0.Add(time.Hour), State: LeaseBound}) // takes the address over
	w := a.writers[mac(1).String()]
	a.mu.Unlock()
	if w == nil {
		t.Fatal("no deletion staged for the MAC whose address was taken over")
	}
	w.mu.Lock() // a write of mac(1) is under way
	done := make(chan error, 1)
	go func() { done <- a.flushStale(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("flushStale waited for another client's write")
	}
	if _, err := store.Get(context.Background(), mac(1)); err != nil {
		t.Fatalf("deleted while its MAC was being written: %v", err)
	}
	w.mu.Unlock()
	if err := a.flushStale(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l, err := store.Get(context.Background(), mac(1)); err != ErrNotFound {
		t.Fatalf("stale record still stored: %+v %v", l, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.stale) != 0 || len(a.writers) != 0 {
		t.Fatalf("%d stale, %d writers left", len(a.stale), len(a.writers))
	}
}

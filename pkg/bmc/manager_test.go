package bmc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metal-iaas/metal/test/bmcsim"
)

// fakeDriver is a unit-test stand-in for a bmclib provider.
type fakeDriver struct {
	openErr  func() error
	delay    time.Duration
	inFlight *atomic.Int32
	maxSeen  *atomic.Int32
	perHost  *sync.Map // addr -> *atomic.Int32
	addr     string
}

func (f *fakeDriver) enter() func() {
	n := f.inFlight.Add(1)
	for {
		m := f.maxSeen.Load()
		if n <= m || f.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	v, _ := f.perHost.LoadOrStore(f.addr, new(atomic.Int32))
	if v.(*atomic.Int32).Add(1) > 1 {
		panic("two operations on one bmc at once")
	}
	return func() { v.(*atomic.Int32).Add(-1); f.inFlight.Add(-1) }
}

func (f *fakeDriver) Open(ctx context.Context) error {
	if f.openErr != nil {
		return f.openErr()
	}
	return nil
}
func (f *fakeDriver) Close(context.Context) error { return nil }
func (f *fakeDriver) PowerStateGet(ctx context.Context) (string, error) {
	defer f.enter()()
	select {
	case <-time.After(f.delay):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return "Chassis Power is on", nil
}
func (f *fakeDriver) PowerSet(ctx context.Context, s string) (bool, error) { return true, nil }
func (f *fakeDriver) BootDeviceSet(context.Context, string, bool, bool) (bool, error) {
	return true, nil
}

func TestManagerLimits(t *testing.T) {
	var inFlight, maxSeen atomic.Int32
	var perHost sync.Map
	m, err := NewManager(Config{Concurrency: 4, Timeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.newDriver = func(ep Endpoint, _ time.Duration) (driver, error) {
		return &fakeDriver{delay: 20 * time.Millisecond, inFlight: &inFlight, maxSeen: &maxSeen, perHost: &perHost, addr: ep.Address()}, nil
	}
	var targets []Target
	for i := 0; i < 20; i++ { // 10 BMCs, each twice
		ep := Endpoint{Protocol: ProtocolIPMI, Host: fmt.Sprintf("10.0.0.%d", i%10), Port: 623, Username: "u", Password: "p"}
		targets = append(targets, Target{Name: fmt.Sprint(i), Endpoint: ep})
	}
	res := m.Each(context.Background(), targets, OpPowerStatus())
	for _, r := range res {
		if r.Err != nil || r.State != PowerOn {
			t.Fatalf("%s: %v %v", r.Target.Name, r.State, r.Err)
		}
	}
	if got := maxSeen.Load(); got > 4 || got < 2 {
		t.Fatalf("max concurrency seen %d, want 2..4", got)
	}
	if len(m.hosts) != 0 {
		t.Fatalf("host locks leaked: %d", len(m.hosts))
	}
}

func TestManagerRetries(t *testing.T) {
	ep := Endpoint{Protocol: ProtocolRedfish, Host: "h", Port: 443, Username: "u", Password: "secretpw"}
	for _, tc := range []struct {
		name      string
		err       error
		wantCalls int32
		want      error
	}{
		{"refused is retried", errors.New("dial tcp: connect: connection refused"), 3, ErrUnreachable},
		{"401 is not", errors.New("401: Unauthorized secretpw"), 1, ErrAuth},
		{"ipmi session is not", errors.New("Error: Unable to establish IPMI v2 / RMCP+ session"), 1, ErrNoSession},
		{"bmc failure is not", errors.New("400: bad"), 1, ErrBMC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			m, _ := NewManager(Config{Retries: 2, Backoff: time.Millisecond, Timeout: time.Second}, nil)
			m.newDriver = func(Endpoint, time.Duration) (driver, error) {
				return &fakeDriver{openErr: func() error { calls.Add(1); return tc.err }}, nil
			}
			_, err := m.PowerStatus(context.Background(), ep)
			if !errors.Is(err, tc.want) || calls.Load() != tc.wantCalls {
				t.Fatalf("err %v after %d calls; want %v after %d", err, calls.Load(), tc.want, tc.wantCalls)
			}
			if got := err.Error(); contains(got, "secretpw") {
				t.Fatalf("password leaked: %s", got)
			}
		})
	}
}

func contains(s, sub string) bool {
	return len(sub) > 0 && len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0)
}
func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{Concurrency: -1}, {Timeout: -1}, {Retries: -2}, {Backoff: -1}, {Retries: 1000}} {
		if _, err := NewManager(c, nil); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
	m, err := NewManager(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := m.Config(); c.Concurrency != 64 || c.Timeout != 30*time.Second || c.Retries != 2 {
		t.Fatalf("defaults: %+v", c)
	}
}

// TestFaultsRealSockets runs one Each over a port where nothing listens,
// a TCP server that accepts and never answers, and a fake healthy BMC:
// the dead ones fail clearly within the timeout and the healthy one is
// not held up. (Against real BMC emulators: test/bmcsim tests.)
func TestFaultsRealSockets(t *testing.T) {
	// Nothing listening: grab a port and close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := l.Addr().(*net.TCPAddr)
	l.Close()
	// Accept and never answer.
	hang1, hang2 := bmcsim.HangingTCP(t), bmcsim.HangingTCP(t)

	const timeout = 1500 * time.Millisecond
	m, err := NewManager(Config{Timeout: timeout, Backoff: 100 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(plain bool, port int) Endpoint {
		return Endpoint{Protocol: ProtocolRedfish, Host: "127.0.0.1", Port: port, Username: "u", Password: "pw-123", PlainHTTP: plain, Insecure: true}
	}
	targets := []Target{
		{"refused", mk(true, deadAddr.Port)},
		{"hang-http", mk(true, hang1)},
		{"hang-https", mk(false, hang2)},
		{"hang-https-again", mk(false, hang2)},
	}
	start := time.Now()
	res := m.Each(context.Background(), targets, OpPowerStatus())
	elapsed := time.Since(start)
	if !errors.Is(res[0].Err, ErrUnreachable) || res[0].Attempts != 3 {
		t.Errorf("refused: %v after %d attempts", res[0].Err, res[0].Attempts)
	}
	for _, r := range res[1:] {
		if !errors.Is(r.Err, ErrTimeout) || !errors.Is(r.Err, context.DeadlineExceeded) {
			t.Errorf("%s: %v, want timeout", r.Target.Name, r.Err)
		}
	}
	for i, r := range res {
		limit := timeout + 500*time.Millisecond
		if i >= 2 { // serialised behind each other
			limit += timeout
		}
		if r.Elapsed > limit {
			t.Errorf("%s took %v, timeout %v", r.Target.Name, r.Elapsed, timeout)
		}
		if r.Err != nil && contains(r.Err.Error(), "pw-123") {
			t.Errorf("password leaked: %v", r.Err)
		}
		t.Logf("%s: %v (%v)", r.Target.Name, r.Err, r.Elapsed)
	}
	// The last two targets share host:port and are serialised, so the
	// whole fan-out takes about two timeouts, not more.
	if elapsed > 2*timeout+time.Second {
		t.Errorf("fan-out took %v", elapsed)
	}
}

func TestEachCancel(t *testing.T) {
	var inFlight, maxSeen atomic.Int32
	var perHost sync.Map
	m, _ := NewManager(Config{Concurrency: 1, Timeout: 10 * time.Second}, nil)
	m.newDriver = func(ep Endpoint, _ time.Duration) (driver, error) {
		return &fakeDriver{delay: 5 * time.Second, inFlight: &inFlight, maxSeen: &maxSeen, perHost: &perHost, addr: ep.Address()}, nil
	}
	var targets []Target
	for i := 0; i < 3; i++ {
		targets = append(targets, Target{Name: fmt.Sprint(i), Endpoint: Endpoint{Protocol: ProtocolRedfish, Host: fmt.Sprintf("h%d", i), Port: 443, Username: "u", Password: "p"}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	res := m.Each(ctx, targets, OpPowerStatus())
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Each took %v after cancel", d)
	}
	for _, r := range res {
		if !errors.Is(r.Err, context.Canceled) {
			t.Errorf("%s: %v, want canceled", r.Target.Name, r.Err)
		}
	}
}

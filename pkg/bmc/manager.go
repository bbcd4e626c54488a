package bmc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Config tunes a Manager. Zero fields take the defaults.
type Config struct {
	// Concurrency bounds operations in flight over all BMCs (default 64).
	Concurrency int
	// Timeout bounds one operation on one BMC, retries included, counted
	// from the moment it may run (queueing behind other operations on the
	// same BMC or for a global slot does not count). Default 30 s.
	Timeout time.Duration
	// Retries is how many extra attempts a transient failure gets
	// (connection refused or reset, HTTP 502/503/504). Default 2; -1
	// disables retries. Wrong credentials, IPMI session failures,
	// timeouts and BMC errors are never retried.
	Retries int
	// Backoff is the wait before the first retry, doubled for each next
	// one up to MaxBackoff (defaults 500 ms and 5 s).
	Backoff    time.Duration
	MaxBackoff time.Duration
}

// Defaults.
const (
	DefaultConcurrency = 64
	DefaultTimeout     = 30 * time.Second
	DefaultRetries     = 2
	DefaultBackoff     = 500 * time.Millisecond
	DefaultMaxBackoff  = 5 * time.Second
)

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	switch {
	case c.Retries == 0:
		c.Retries = DefaultRetries
	case c.Retries < 0:
		c.Retries = 0
	}
	if c.Backoff == 0 {
		c.Backoff = DefaultBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	return c
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Concurrency < 0:
		return fmt.Errorf("bmc config: concurrency %d is negative", c.Concurrency)
	case c.Timeout < 0:
		return fmt.Errorf("bmc config: timeout %v is negative", c.Timeout)
	case c.Retries < -1:
		return fmt.Errorf("bmc config: retries %d is below -1", c.Retries)
	case c.Backoff < 0 || c.MaxBackoff < 0:
		return fmt.Errorf("bmc config: negative backoff")
	case c.Retries > 100:
		return fmt.Errorf("bmc config: retries %d is unreasonably high (max 100)", c.Retries)
	}
	return nil
}

// Manager runs BMC operations: one at a time per BMC address, at most
// Config.Concurrency at once, each bounded by Config.Timeout.
type Manager struct {
	cfg       Config
	log       *slog.Logger
	sem       chan struct{}
	newDriver newDriverFunc
	tlsCache  tls.ClientSessionCache

	mu    sync.Mutex
	hosts map[string]*hostLock
}

type hostLock struct {
	ch   chan struct{} // capacity 1: holding a token is holding the lock
	refs int
}

// NewManager validates cfg and returns a Manager. log may be nil.
func NewManager(cfg Config, log *slog.Logger) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	m := &Manager{
		cfg:      cfg,
		log:      log,
		sem:      make(chan struct{}, cfg.Concurrency),
		hosts:    map[string]*hostLock{},
		tlsCache: tls.NewLRUClientSessionCache(4096),
	}
	m.newDriver = func(ep Endpoint, timeout time.Duration) (driver, error) {
		return newBMCLibDriver(ep, timeout, m.tlsCache)
	}
	return m, nil
}

// Config returns the effective configuration (defaults filled in).
func (m *Manager) Config() Config { return m.cfg }

// lockHost waits for exclusive use of one BMC address.
func (m *Manager) lockHost(ctx context.Context, addr string) (func(), error) {
	m.mu.Lock()
	h := m.hosts[addr]
	if h == nil {
		h = &hostLock{ch: make(chan struct{}, 1)}
		m.hosts[addr] = h
	}
	h.refs++
	m.mu.Unlock()
	drop := func() {
		m.mu.Lock()
		h.refs--
		if h.refs == 0 {
			delete(m.hosts, addr)
		}
		m.mu.Unlock()
	}
	select {
	case h.ch <- struct{}{}:
		return func() { <-h.ch; drop() }, nil
	case <-ctx.Done():
		drop()
		return nil, ctx.Err()
	}
}

// Do runs op against one BMC and returns the power state the operation
// observed or produced (PowerUnknown when it says nothing about power).
func (m *Manager) Do(ctx context.Context, ep Endpoint, op Op) (PowerState, error) {
	st, _, err := m.do(ctx, ep, op)
	return st, err
}

func (m *Manager) do(ctx context.Context, ep Endpoint, op Op) (PowerState, int, error) {
	if op.run == nil {
		return PowerUnknown, 0, fmt.Errorf("%w: empty operation", ErrUnsupported)
	}
	if ep.Host == "" || ep.Port == 0 || (ep.Protocol != ProtocolIPMI && ep.Protocol != ProtocolRedfish) {
		return PowerUnknown, 0, fmt.Errorf("%w: endpoint %q is incomplete (use ParseURL)", ErrInvalidURL, ep.Redacted())
	}
	unlock, err := m.lockHost(ctx, ep.Address())
	if err != nil {
		return PowerUnknown, 0, wrapErr(ep, op.Name+" (waiting for bmc)", err)
	}
	defer unlock()
	select {
	case m.sem <- struct{}{}:
		defer func() { <-m.sem }()
	case <-ctx.Done():
		return PowerUnknown, 0, wrapErr(ep, op.Name+" (waiting for a slot)", ctx.Err())
	}

	opCtx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	start := time.Now()
	backoff := m.cfg.Backoff
	for attempt := 1; ; attempt++ {
		st, rawErr := m.attempt(opCtx, ep, op)
		if rawErr == nil {
			m.log.Debug("bmc operation done", "bmc", ep, "op", op.Name, "state", st, "attempts", attempt, "elapsed", time.Since(start))
			return st, attempt, nil
		}
		err := wrapErr(ep, op.Name, rawErr)
		if errors.Is(err, ErrNoSession) {
			// Not retried either way: a rejected password must not be
			// retried, and ipmitool has already retransmitted.
			err = refineIPMI(opCtx, ep, err)
			m.log.Warn("bmc operation failed", "bmc", ep, "op", op.Name, "attempts", attempt, "elapsed", time.Since(start), "err", err)
			return PowerUnknown, attempt, err
		}
		if !transient(err) || attempt > m.cfg.Retries {
			m.log.Warn("bmc operation failed", "bmc", ep, "op", op.Name, "attempts", attempt, "elapsed", time.Since(start), "err", err)
			return PowerUnknown, attempt, err
		}
		if dl, ok := opCtx.Deadline(); ok && time.Until(dl) < backoff {
			return PowerUnknown, attempt, err
		}
		m.log.Debug("bmc operation retrying", "bmc", ep, "op", op.Name, "attempt", attempt, "backoff", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-opCtx.Done():
			t.Stop()
			return PowerUnknown, attempt, err
		}
		backoff = min(2*backoff, m.cfg.MaxBackoff)
	}
}

// attempt opens a provider connection, runs op and closes it. It returns
// when ctx ends even if the provider ignores ctx (its own HTTP timeout,
// derived from the same deadline, or the killed ipmitool process ends the
// orphaned call shortly after).
func (m *Manager) attempt(ctx context.Context, ep Endpoint, op Op) (PowerState, error) {
	remaining := m.cfg.Timeout
	if dl, ok := ctx.Deadline(); ok {
		remaining = time.Until(dl)
	}
	if remaining <= 0 {
		return PowerUnknown, context.DeadlineExceeded
	}
	d, err := m.newDriver(ep, remaining)
	if err != nil {
		return PowerUnknown, err
	}
	type res struct {
		st  PowerState
		err error
	}
	ch := make(chan res, 1)
	go func() {
		if err := d.Open(ctx); err != nil {
			ch <- res{PowerUnknown, err}
			return
		}
		st, err := op.run(ctx, d)
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = d.Close(closeCtx)
		cancel()
		ch <- res{st, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil && ctx.Err() != nil {
			return PowerUnknown, errors.Join(ctx.Err(), r.err)
		}
		return r.st, r.err
	case <-ctx.Done():
		return PowerUnknown, ctx.Err()
	}
}

// PowerStatus reads the machine's power state.
func (m *Manager) PowerStatus(ctx context.Context, ep Endpoint) (PowerState, error) {
	return m.Do(ctx, ep, OpPowerStatus())
}

// PowerOn powers the machine on.
func (m *Manager) PowerOn(ctx context.Context, ep Endpoint) error {
	_, err := m.Do(ctx, ep, OpPowerOn())
	return err
}

// PowerOff removes power at once.
func (m *Manager) PowerOff(ctx context.Context, ep Endpoint) error {
	_, err := m.Do(ctx, ep, OpPowerOff())
	return err
}

// PowerSoft requests an orderly shutdown.
func (m *Manager) PowerSoft(ctx context.Context, ep Endpoint) error {
	_, err := m.Do(ctx, ep, OpPowerSoft())
	return err
}

// PowerCycle turns power off and on.
func (m *Manager) PowerCycle(ctx context.Context, ep Endpoint) error {
	_, err := m.Do(ctx, ep, OpPowerCycle())
	return err
}

// PowerReset resets the machine.
func (m *Manager) PowerReset(ctx context.Context, ep Endpoint) error {
	_, err := m.Do(ctx, ep, OpPowerReset())
	return err
}

// SetBootDevice sets the next boot device (once unless persistent).
func (m *Manager) SetBootDevice(ctx context.Context, ep Endpoint, dev BootDevice, persistent, efi bool) error {
	_, err := m.Do(ctx, ep, OpSetBootDevice(dev, persistent, efi))
	return err
}

// VirtualMediaInsert inserts the image at mediaURL as a virtual CD
// (Redfish only; ErrUnsupported otherwise).
func (m *Manager) VirtualMediaInsert(ctx context.Context, ep Endpoint, mediaURL string) error {
	_, err := m.Do(ctx, ep, OpVirtualMediaInsert(mediaURL))
	return err
}

// VirtualMediaEject ejects the virtual CD (Redfish only).
func (m *Manager) VirtualMediaEject(ctx context.Context, ep Endpoint) error {
	_, err := m.Do(ctx, ep, OpVirtualMediaEject())
	return err
}

// Verify checks cheaply that the BMC answers with these credentials (it
// reads the power state). Use it before storing a new endpoint.
func (m *Manager) Verify(ctx context.Context, ep Endpoint) error {
	_, err := m.Do(ctx, ep, opVerify())
	return err
}

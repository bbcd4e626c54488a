// Package retention keeps metald's event log bounded: in the background
// it deletes the events older than the retention age and those beyond the
// row cap, oldest first, through the store's batched PruneEvents, and
// counts what it deleted.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of metald serve's --event-retention and --event-max-rows, and
// how often the log is pruned.
const (
	DefaultMaxAge  = 30 * 24 * time.Hour
	DefaultMaxRows = 1_000_000
	DefaultEvery   = 10 * time.Minute
)

// ErrInvalid wraps every configuration error.
var ErrInvalid = errors.New("invalid event retention")

// Pruner is the store: it deletes the events older than before (zero: no
// age limit) and all but the newest keepRows (0: no row limit), in short
// transactions, and returns how many it deleted.
type Pruner interface {
	PruneEvents(ctx context.Context, before time.Time, keepRows int) (int64, error)
}

// Config is what to keep. Zero MaxAge and MaxRows keep everything.
type Config struct {
	// MaxAge is how long an event is kept; 0: no age limit.
	MaxAge time.Duration
	// MaxRows is how many events are kept at most; 0: no row limit.
	MaxRows int
	// Every is how often the log is pruned; 0: DefaultEvery.
	Every time.Duration
}

// Validate checks c.
func (c Config) Validate() error {
	if c.MaxAge < 0 {
		return fmt.Errorf("%w: age %s must not be negative", ErrInvalid, c.MaxAge)
	}
	if c.MaxRows < 0 {
		return fmt.Errorf("%w: row limit %d must not be negative", ErrInvalid, c.MaxRows)
	}
	if c.Every < 0 {
		return fmt.Errorf("%w: interval %s must not be negative", ErrInvalid, c.Every)
	}
	return nil
}

// Enabled reports whether c prunes anything.
func (c Config) Enabled() bool { return c.MaxAge > 0 || c.MaxRows > 0 }

// ParseAge reads a retention age: a whole number of days ("30d"), a Go
// duration ("720h", "90m") or "0" (no age limit).
func ParseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" || s == "" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100*365 {
			return 0, fmt.Errorf("%w: %q: want a number of days such as 30d, a duration such as 720h, or 0", ErrInvalid, s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%w: %q: want a number of days such as 30d, a duration such as 720h, or 0", ErrInvalid, s)
	}
	return d, nil
}

// Service prunes the event log. Run it in metald's errgroup.
type Service struct {
	cfg    Config
	store  Pruner
	now    func() time.Time
	log    *slog.Logger
	pruned prometheus.Counter
	failed prometheus.Counter
}

// New returns the service; cfg must be valid. Its counters are registered
// with reg.
func New(cfg Config, store Pruner, reg prometheus.Registerer, log *slog.Logger) *Service {
	if cfg.Every <= 0 {
		cfg.Every = DefaultEvery
	}
	s := &Service{cfg: cfg, store: store, now: time.Now, log: log,
		pruned: prometheus.NewCounter(prometheus.CounterOpts{Name: "metald_events_pruned_total",
			Help: "Events deleted by the event retention (--event-retention, --event-max-rows)."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "metald_events_prune_errors_total",
			Help: "Event retention runs that failed."}),
	}
	reg.MustRegister(s.pruned, s.failed)
	return s
}

// Run prunes once at start and then every cfg.Every until ctx ends. A
// failed prune is logged and counted, and retried at the next tick; it
// never stops metald. With nothing to prune it only waits.
func (s *Service) Run(ctx context.Context) error {
	if !s.cfg.Enabled() {
		s.log.Info("event retention disabled: events are kept forever")
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(s.cfg.Every)
	defer t.Stop()
	for {
		if _, err := s.PruneOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("event retention", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// PruneOnce deletes what the configuration no longer keeps and returns
// how many events it deleted.
func (s *Service) PruneOnce(ctx context.Context) (int64, error) {
	var before time.Time
	if s.cfg.MaxAge > 0 {
		before = s.now().Add(-s.cfg.MaxAge)
	}
	start := time.Now()
	n, err := s.store.PruneEvents(ctx, before, s.cfg.MaxRows)
	s.pruned.Add(float64(n))
	if err != nil {
		s.failed.Inc()
		return n, fmt.Errorf("prune events: %w", err)
	}
	if n > 0 {
		s.log.Info("events pruned", "count", n, "max_age", s.cfg.MaxAge.String(), "max_rows", s.cfg.MaxRows,
			"took", time.Since(start).Round(time.Millisecond).String())
	}
	return n, nil
}

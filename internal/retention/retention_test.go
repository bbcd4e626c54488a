package retention

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/metal-iaas/metal/pkg/inventory"
)

func TestParseAge(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "30d", want: 30 * 24 * time.Hour},
		{in: "1d", want: 24 * time.Hour},
		{in: "720h", want: 720 * time.Hour},
		{in: "90m", want: 90 * time.Minute},
		{in: "0", want: 0},
		{in: "0d", want: 0},
		{in: "", want: 0},
		{in: "-1d", wantErr: true},
		{in: "-5h", wantErr: true},
		{in: "thirty days", wantErr: true},
		{in: "1.5d", wantErr: true},
		{in: "1000000d", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseAge(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseAge(%q) = %s, %v; want %s, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseAge(%q): %v does not wrap ErrInvalid", tt.in, err)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		cfg     Config
		wantErr bool
	}{
		{cfg: Config{MaxAge: DefaultMaxAge, MaxRows: DefaultMaxRows}},
		{cfg: Config{}},
		{cfg: Config{MaxAge: -time.Second}, wantErr: true},
		{cfg: Config{MaxRows: -1}, wantErr: true},
		{cfg: Config{Every: -time.Second}, wantErr: true},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err != nil) != tt.wantErr {
			t.Errorf("%+v: %v", tt.cfg, err)
		}
	}
}

// fakePruner records its calls and deletes n each time.
type fakePruner struct {
	mu     sync.Mutex
	calls  []call
	n      int64
	err    error
	called chan struct{}
}

type call struct {
	before time.Time
	keep   int
}

func (f *fakePruner) PruneEvents(ctx context.Context, before time.Time, keep int) (int64, error) {
	f.mu.Lock()
	f.calls = append(f.calls, call{before, keep})
	f.mu.Unlock()
	select {
	case f.called <- struct{}{}:
	default:
	}
	return f.n, f.err
}

func TestPruneOnce(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		cfg        Config
		n          int64
		err        error
		wantBefore time.Time
		wantPruned float64
		wantFailed float64
	}{
		{name: "age and rows", cfg: Config{MaxAge: 30 * 24 * time.Hour, MaxRows: 10}, n: 5,
			wantBefore: now.Add(-30 * 24 * time.Hour), wantPruned: 5},
		{name: "rows only", cfg: Config{MaxRows: 10}, n: 3, wantPruned: 3},
		{name: "failure counts what it deleted", cfg: Config{MaxAge: time.Hour}, n: 2, err: errors.New("disk I/O error"),
			wantBefore: now.Add(-time.Hour), wantPruned: 2, wantFailed: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakePruner{n: tt.n, err: tt.err}
			s := New(tt.cfg, f, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
			s.now = func() time.Time { return now }
			n, err := s.PruneOnce(context.Background())
			if n != tt.n || (err != nil) != (tt.err != nil) || (tt.err != nil && !errors.Is(err, tt.err)) {
				t.Fatalf("PruneOnce = %d, %v", n, err)
			}
			if len(f.calls) != 1 || !f.calls[0].before.Equal(tt.wantBefore) || f.calls[0].keep != tt.cfg.MaxRows {
				t.Fatalf("calls %+v", f.calls)
			}
			if got := testutil.ToFloat64(s.pruned); got != tt.wantPruned {
				t.Fatalf("pruned counter %v, want %v", got, tt.wantPruned)
			}
			if got := testutil.ToFloat64(s.failed); got != tt.wantFailed {
				t.Fatalf("failed counter %v, want %v", got, tt.wantFailed)
			}
		})
	}
}

func TestRunPrunesAtStartAndStops(t *testing.T) {
	f := &fakePruner{called: make(chan struct{}, 1)}
	s := New(Config{MaxAge: time.Hour, Every: time.Hour}, f, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-f.called:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not prune at start")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestRunDisabledPrunesNothing(t *testing.T) {
	f := &fakePruner{}
	s := New(Config{}, f, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if len(f.calls) != 0 {
		t.Fatalf("disabled retention pruned: %+v", f.calls)
	}
}

// TestWithSQLite: the service against the real store keeps the newest
// MaxRows events.
func TestWithSQLite(t *testing.T) {
	ctx := context.Background()
	store, err := inventory.OpenSQLite(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for i := range 2500 {
		if _, err := store.AppendEvent(ctx, inventory.Event{Type: "test.fill", Data: map[string]any{"i": i}}); err != nil {
			t.Fatal(err)
		}
	}
	s := New(Config{MaxAge: DefaultMaxAge, MaxRows: 1000}, store, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	n, err := s.PruneOnce(ctx)
	if err != nil || n != 1500 {
		t.Fatalf("pruned %d, %v; want 1500", n, err)
	}
	left, err := store.ListEvents(ctx, inventory.EventFilter{})
	if err != nil || len(left) != 1000 || left[0].Data["i"] != float64(1500) {
		t.Fatalf("%d left (%v), first %v", len(left), err, left[0].Data)
	}
}

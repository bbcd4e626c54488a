package inventory

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPruneEvents(t *testing.T) {
	old := pruneBatch
	pruneBatch = 7 // several batches per prune
	t.Cleanup(func() { pruneBatch = old })

	now := time.Now()
	ancient, recent := now.Add(-40*24*time.Hour), now.Add(-time.Hour)
	cutoff := now.Add(-30 * 24 * time.Hour)
	// times lists the events to append, oldest first.
	times := func(nOld, nNew int) []time.Time {
		var ts []time.Time
		for range nOld {
			ts = append(ts, ancient)
		}
		for range nNew {
			ts = append(ts, recent)
		}
		return ts
	}
	tests := []struct {
		name       string
		events     []time.Time
		before     time.Time
		keep       int
		wantPruned int64
	}{
		{name: "by age", events: times(30, 10), before: cutoff, wantPruned: 30},
		{name: "by rows", events: times(0, 40), keep: 15, wantPruned: 25},
		{name: "rows beyond age", events: times(10, 30), before: cutoff, keep: 15, wantPruned: 25},
		{name: "age beyond rows", events: times(30, 10), before: cutoff, keep: 35, wantPruned: 30},
		{name: "nothing old", events: times(0, 20), before: cutoff, keep: 100, wantPruned: 0},
		{name: "disabled", events: times(20, 0), wantPruned: 0},
		{name: "everything old", events: times(21, 0), before: cutoff, wantPruned: 21},
		{name: "a newer event stops the age prune", events: append(append(times(5, 1), times(9, 0)...), recent),
			before: cutoff, wantPruned: 5},
		{name: "empty", before: cutoff, keep: 1},
	}
	forEachStore(t, func(t *testing.T, env *testEnv) {
		type pruner interface {
			PruneEvents(ctx context.Context, before time.Time, keepRows int) (int64, error)
		}
		s := env.s
		p := s.(pruner)
		ctx := context.Background()
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if _, err := p.PruneEvents(ctx, time.Now().Add(time.Hour), 0); err != nil { // start empty
					t.Fatal(err)
				}
				var ids []int64
				for i, ts := range tt.events {
					e, err := s.AppendEvent(ctx, Event{Time: ts, Type: "test.prune", Data: map[string]any{"i": i}})
					if err != nil {
						t.Fatal(err)
					}
					ids = append(ids, e.ID)
				}
				n, err := p.PruneEvents(ctx, tt.before, tt.keep)
				if err != nil || n != tt.wantPruned {
					t.Fatalf("pruned %d, %v; want %d", n, err, tt.wantPruned)
				}
				left, err := s.ListEvents(ctx, EventFilter{})
				if err != nil {
					t.Fatal(err)
				}
				if len(left) != len(ids)-int(n) {
					t.Fatalf("%d events left, want %d", len(left), len(ids)-int(n))
				}
				for i, e := range left { // the newest survive, in order
					if want := ids[int(n)+i]; e.ID != want {
						t.Fatalf("event %d left has id %d, want %d", i, e.ID, want)
					}
				}
				next, err := s.AppendEvent(ctx, Event{Type: "test.after"})
				if err != nil {
					t.Fatal(err)
				}
				if len(ids) > 0 && next.ID <= ids[len(ids)-1] {
					t.Fatalf("event id %d reused after a prune (last was %d)", next.ID, ids[len(ids)-1])
				}
			})
		}
		t.Run("refusals", func(t *testing.T) {
			if _, err := p.PruneEvents(ctx, time.Time{}, -1); !errors.Is(err, ErrInvalid) {
				t.Fatalf("negative keep: %v", err)
			}
			if _, err := s.AppendEvent(ctx, Event{Time: ancient, Type: "test.prune"}); err != nil {
				t.Fatal(err)
			}
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := p.PruneEvents(cctx, cutoff, 0); !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled: %v", err)
			}
		})
	})
}

package jobs

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metal-iaas/metal/pkg/inventory"
)

// blockingPower blocks the first boot-device change until release is
// closed or the step's context ends.
type blockingPower struct {
	*fakePower
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (b *blockingPower) MachineBoot(ctx context.Context, name, dev string, persistent, efi bool) error {
	b.once.Do(func() { close(b.entered) })
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.fakePower.MachineBoot(ctx, name, dev, persistent, efi)
}

// watchedStore counts the writes a job step makes after Run returned.
type watchedStore struct {
	Store
	ran  atomic.Bool // Run returned
	late atomic.Int32
}

func (w *watchedStore) touch() {
	if w.ran.Load() {
		w.late.Add(1)
	}
}

func (w *watchedStore) UpdateJob(ctx context.Context, id int64, phase string, progress json.RawMessage, deadline time.Time, ev *inventory.Event) error {
	w.touch()
	return w.Store.UpdateJob(ctx, id, phase, progress, deadline, ev)
}

func (w *watchedStore) FinishJob(ctx context.Context, id int64, ok bool, errMsg string, to inventory.State, reason string) (inventory.Job, error) {
	w.touch()
	return w.Store.FinishJob(ctx, id, ok, errMsg, to, reason)
}

func (w *watchedStore) AppendEvent(ctx context.Context, e inventory.Event) (inventory.Event, error) {
	w.touch()
	return w.Store.AppendEvent(ctx, e)
}

type inFlight struct {
	svc    *Service
	job    inventory.Job
	power  *blockingPower
	store  *watchedStore
	cancel context.CancelFunc // ends Run's context
	done   chan struct{}      // closed when Run returned
}

// stepInFlight leaves a provision in the power phase (metald "crashed"
// before its power step), then runs the service, whose resume starts the
// step, which blocks in the BMC call.
func stepInFlight(t *testing.T, grace time.Duration) *inFlight {
	t.Helper()
	f := newFixture(t, true)
	f.ready(t)
	f.svc.async = func(func()) {}
	j, err := f.svc.Provision(context.Background(), "m1", ProvisionRequest{Image: "img"})
	if err != nil {
		t.Fatal(err)
	}
	x := &inFlight{svc: f.svc, job: j, done: make(chan struct{}),
		power: &blockingPower{fakePower: f.power, entered: make(chan struct{}), release: make(chan struct{})},
		store: &watchedStore{Store: f.svc.store}}
	f.svc.power, f.svc.store, f.svc.async = x.power, x.store, f.svc.spawn
	f.svc.cfg.StopGrace = grace
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	x.cancel = cancel
	go func() {
		defer close(x.done)
		if err := f.svc.Run(ctx); err != nil {
			t.Errorf("run: %v", err)
		}
		x.store.ran.Store(true)
	}()
	select {
	case <-x.power.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the resumed power step never called the BMC")
	}
	return x
}

// stopped waits for Run to return, then checks that no step wrote to the
// store afterwards and that no step starts any more.
func (x *inFlight) stopped(t *testing.T) inventory.Job {
	t.Helper()
	select {
	case <-x.done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	x.svc.async(func() { t.Error("a job step started after Run returned") })
	if n := x.store.late.Load(); n != 0 {
		t.Fatalf("%d store writes after Run returned", n)
	}
	j, err := x.store.Store.GetJob(context.Background(), x.job.ID)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// TestRunWaitsForStepInFlight: a step in flight when Run's context ends
// finishes within the grace period, and Run returns only after it did.
func TestRunWaitsForStepInFlight(t *testing.T) {
	x := stepInFlight(t, time.Hour)
	x.cancel()
	select {
	case <-x.done:
		t.Fatal("Run returned while a job step was in flight")
	default:
	}
	close(x.power.release)
	j := x.stopped(t)
	if j.State != inventory.JobRunning || j.Phase != PhaseBooting || x.power.Calls() != "m1 bootdev pxe; m1 cycle" {
		t.Fatalf("job %s in phase %s, power calls %q", j.State, j.Phase, x.power.Calls())
	}
}

// TestRunAbandonsStepAfterGrace: a step still blocked when the grace
// period ends is cancelled and returns before Run does, leaving its job
// in the power phase (not failed) for the next start to resume.
func TestRunAbandonsStepAfterGrace(t *testing.T) {
	x := stepInFlight(t, time.Millisecond)
	x.cancel()
	j := x.stopped(t)
	if j.State != inventory.JobRunning || j.Phase != PhasePower || j.Error != "" {
		t.Fatalf("abandoned job %s in phase %s: %q", j.State, j.Phase, j.Error)
	}
	m, err := x.store.Store.GetMachine(context.Background(), "m1")
	if err != nil {
		t.Fatal(err)
	}
	if m.State != inventory.StateProvisioning {
		t.Fatalf("machine %s (%s)", m.State, m.StateReason)
	}
}

package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestJobLifecycle(t *testing.T) {
	forEachStore(t, func(t *testing.T, env *testEnv) {
		s := env.s
		ctx := context.Background()
		if _, err := s.CreateMachine(ctx, Machine{Name: "m1", MACs: []string{"52:54:00:aa:00:01"}}); err != nil {
			t.Fatal(err)
		}
		// new → provisioning is not allowed: StartJob refuses and changes nothing.
		if _, _, err := s.StartJob(ctx, Job{Machine: "m1", Kind: JobProvision}, StateProvisioning, "x"); !errors.Is(err, ErrInvalidTransition) {
			t.Fatalf("start from new: %v", err)
		}
		if jobs, _ := s.ListJobs(ctx, "m1", false, 0); len(jobs) != 0 {
			t.Fatal("refused start left a job")
		}
		j, tok, err := s.StartJob(ctx, Job{Machine: "m1", Kind: JobInspect, Phase: "power", Params: json.RawMessage(`{"a":1}`)}, StateInspecting, "inspect requested")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.StartJob(ctx, Job{Machine: "m1", Kind: JobInspect}, StateInspecting, "again"); !errors.Is(err, ErrConflict) {
			t.Fatalf("second job: %v", err)
		}
		if got, err := s.JobByToken(ctx, tok); err != nil || got.ID != j.ID {
			t.Fatalf("by token: %v", err)
		}
		// Claiming the task rotates the token and binds the job to the
		// claiming address; another address is refused and changes nothing.
		tok2, err := s.ClaimJobToken(ctx, j.ID, "192.0.2.10")
		if err != nil || tok2 == tok {
			t.Fatalf("claim: %q %v", tok2, err)
		}
		if _, err := s.JobByToken(ctx, tok); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("first token still valid after a claim: %v", err)
		}
		if _, err := s.ClaimJobToken(ctx, j.ID, "192.0.2.66"); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "192.0.2.10") {
			t.Fatalf("claim from another address: %v", err)
		}
		if got, err := s.JobByToken(ctx, tok2); err != nil || got.ID != j.ID || got.AgentAddr != "192.0.2.10" {
			t.Fatalf("token after a refused claim: %+v %v", got, err)
		}
		tok3, err := s.ClaimJobToken(ctx, j.ID, "192.0.2.10")
		if err != nil || tok3 == tok2 {
			t.Fatalf("claim again by the owner: %v", err)
		}
		if _, err := s.JobByToken(ctx, tok2); !errors.Is(err, ErrUnauthorized) {
			t.Fatal("revoked token still valid")
		}
		tok = tok3
		if err := s.UpdateJob(ctx, j.ID, "agent", json.RawMessage(`{"bytes":5}`), time.Now().Add(time.Minute), &Event{Machine: "m1", Type: "job.phase"}); err != nil {
			t.Fatal(err)
		}
		// Survives a reopen (metald restart).
		s = env.reopen(t)
		act, err := s.ActiveJob(ctx, "m1")
		if err != nil || act.Phase != "agent" || string(act.Progress) != `{"bytes":5}` {
			t.Fatalf("after reopen: %v %+v", err, act)
		}
		done, err := s.FinishJob(ctx, j.ID, true, "", StateReady, "inspected")
		if err != nil || done.State != JobSucceeded {
			t.Fatalf("finish: %v %+v", err, done)
		}
		if _, err := s.JobByToken(ctx, tok); !errors.Is(err, ErrUnauthorized) {
			t.Fatal("token still valid after the job ended")
		}
		if _, err := s.ClaimJobToken(ctx, j.ID, "192.0.2.10"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("claim of an ended job: %v", err)
		}
		if _, err := s.FinishJob(ctx, j.ID, false, "late", StateFailed, "x"); !errors.Is(err, ErrConflict) {
			t.Fatalf("finishing twice: %v", err)
		}
		m, _ := s.GetMachine(ctx, "m1")
		if m.State != StateReady {
			t.Fatalf("machine %s", m.State)
		}
		evs, _ := s.ListEvents(ctx, EventFilter{Machine: "m1", Type: "job"})
		if len(evs) != 3 {
			t.Fatalf("job events: %+v", evs)
		}
	})
}

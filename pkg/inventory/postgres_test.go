package inventory

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// openPostgresAt opens a store on url with dataDir and closes it when the
// test ends.
func openPostgresAt(t testing.TB, url, dataDir string) *Postgres {
	t.Helper()
	s, err := OpenPostgres(context.Background(), url, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openPostgresEnv is the behavioural suite's PostgreSQL factory: a fresh
// database on the shared test cluster.
func openPostgresEnv(t testing.TB) *testEnv {
	url := postgresURL(t)
	dir := t.TempDir()
	env := &testEnv{s: openPostgresAt(t, url, dir), dir: dir, schema: PostgresSchemaVersion()}
	env.reopen = func(t testing.TB) testStore {
		env.s.Close()
		env.s = openPostgresAt(t, url, dir)
		return env.s
	}
	env.raw = func(t testing.TB) []byte {
		var all string
		err := env.s.(*Postgres).Pool().QueryRow(context.Background(), `SELECT
			(SELECT COALESCE(string_agg(m::text, '|'), '') FROM machines m) ||
			(SELECT COALESCE(string_agg(e::text, '|'), '') FROM events e) ||
			(SELECT COALESCE(string_agg(j::text, '|'), '') FROM jobs j)`).Scan(&all)
		if err != nil {
			t.Fatal(err)
		}
		return []byte(all)
	}
	env.setSchema = func(t testing.TB, v int) {
		if _, err := env.s.(*Postgres).Pool().Exec(context.Background(), `UPDATE schema_version SET version = $1`, v); err != nil {
			t.Fatal(err)
		}
	}
	env.openDir = func(d string) error {
		s, err := OpenPostgres(context.Background(), url, d)
		if err == nil {
			s.Close()
		}
		return err
	}
	return env
}

// sharedDir returns a data dir holding the same secret.key as dir, as a
// second metald sharing the database would have.
func sharedDir(t *testing.T, dir string) string {
	t.Helper()
	d := t.TempDir()
	key, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, KeyFile), key, 0o600); err != nil {
		t.Fatal(err)
	}
	return d
}

// Two stores on one database race StartJob on one machine: exactly one
// wins each round, the other gets ErrConflict, and the machine never has
// two running jobs.
func TestPostgresStartJobRace(t *testing.T) {
	url := postgresURL(t)
	dirA := t.TempDir()
	a := openPostgresAt(t, url, dirA)
	b := openPostgresAt(t, url, sharedDir(t, dirA))
	ctx := context.Background()
	if _, err := a.CreateMachine(ctx, Machine{Name: "m1", MACs: []string{"52:54:00:aa:00:01"}, State: StateNew}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Transition(ctx, "m1", StateReady, "test"); err != nil {
		t.Fatal(err)
	}
	const rounds = 10
	for round := range rounds {
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, 2)
		jobs := make([]Job, 2)
		for i, s := range []testStore{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				jobs[i], _, errs[i] = s.StartJob(ctx, Job{Machine: "m1", Kind: JobProvision}, StateProvisioning, fmt.Sprintf("round %d store %d", round, i))
			}()
		}
		close(start)
		wg.Wait()
		won := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if won >= 0 {
					t.Fatalf("round %d: both stores started a job", round)
				}
				won = i
			case errors.Is(err, ErrConflict) || errors.Is(err, ErrInvalidTransition):
				// The loser sees the winner's job (or the machine already
				// provisioning): either way it started nothing.
			default:
				t.Fatalf("round %d store %d: %v", round, i, err)
			}
		}
		if won < 0 {
			t.Fatalf("round %d: no store started a job: %v", round, errs)
		}
		running, err := b.ListJobs(ctx, "m1", true, 0)
		if err != nil || len(running) != 1 || running[0].ID != jobs[won].ID {
			t.Fatalf("round %d: running jobs %+v %v", round, running, err)
		}
		// Finish through the other store; the machine goes back to ready.
		if _, err := []testStore{a, b}[1-won].FinishJob(ctx, jobs[won].ID, false, "test", StateFailed, "x"); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Transition(ctx, "m1", StateReady, "again"); err != nil {
			t.Fatal(err)
		}
	}
	all, _ := a.ListJobs(ctx, "m1", false, 0)
	if len(all) != rounds {
		t.Fatalf("want %d jobs, have %d", rounds, len(all))
	}
}

// WaitEvents in store A wakes on an event appended through store B, by
// NOTIFY: the fallback poll is set far beyond the test's deadline.
func TestPostgresWaitEventsAcrossStores(t *testing.T) {
	old := pgPollEvery
	pgPollEvery = time.Minute
	defer func() { pgPollEvery = old }()
	url := postgresURL(t)
	dirA := t.TempDir()
	a := openPostgresAt(t, url, dirA)
	b := openPostgresAt(t, url, sharedDir(t, dirA))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range 3 {
		evs, err := a.ListEvents(ctx, EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var since int64
		if len(evs) > 0 {
			since = evs[len(evs)-1].ID
		}
		done := make(chan error, 1)
		go func() { done <- a.WaitEvents(ctx, since) }()
		select {
		case err := <-done:
			t.Fatalf("round %d: WaitEvents returned before any event: %v", i, err)
		case <-time.After(50 * time.Millisecond):
		}
		began := time.Now()
		e, err := b.AppendEvent(ctx, Event{Type: "test.ping", Message: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("round %d: wait: %v", i, err)
		}
		t.Logf("round %d: woke %v after the append", i, time.Since(began).Round(time.Millisecond))
		got, err := a.ListEvents(ctx, EventFilter{Since: since})
		if err != nil || len(got) != 1 || got[0].ID != e.ID || got[0].Message != fmt.Sprint(i) {
			t.Fatalf("round %d: A sees %+v %v", i, got, err)
		}
	}
	// A machine created through B is listed by A, with its BMC readable
	// because both share the key.
	if _, err := b.CreateMachine(ctx, Machine{Name: "m1", MACs: []string{"52:54:00:aa:00:01"}, BMC: "ipmi://u:pw@10.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if u, err := a.BMCURL(ctx, "m1"); err != nil || u != "ipmi://u:pw@10.0.0.1" {
		t.Fatalf("BMC through A: %q %v", u, err)
	}
}

// A follower reading events by id while two stores append concurrently
// sees every event exactly once, in id order: ids are handed out in
// commit order.
func TestPostgresEventOrderAcrossStores(t *testing.T) {
	url := postgresURL(t)
	dirA := t.TempDir()
	a := openPostgresAt(t, url, dirA)
	b := openPostgresAt(t, url, sharedDir(t, dirA))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const per = 60
	var wg sync.WaitGroup
	for i, s := range []testStore{a, b} {
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := range per / 2 {
					if _, err := s.AppendEvent(ctx, Event{Type: "test.load", Message: fmt.Sprintf("%d/%d/%d", i, w, n)}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	seen := map[string]bool{}
	var since int64
	for len(seen) < 2*per {
		if err := a.WaitEvents(ctx, since); err != nil {
			t.Fatalf("after %d events: %v", len(seen), err)
		}
		evs, err := a.ListEvents(ctx, EventFilter{Since: since})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.ID <= since || seen[e.Message] {
				t.Fatalf("event %d %q out of order or twice", e.ID, e.Message)
			}
			seen[e.Message] = true
			since = e.ID
		}
	}
	wg.Wait()
	all, _ := b.ListEvents(ctx, EventFilter{})
	if len(all) != 2*per {
		t.Fatalf("stored %d events, follower saw %d", len(all), len(seen))
	}
}

// Two metalds starting together on an empty database migrate it once.
func TestPostgresConcurrentMigration(t *testing.T) {
	url := postgresURL(t)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := OpenPostgres(context.Background(), url, t.TempDir())
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
	}
	s := openPostgresAt(t, url, t.TempDir())
	var n, v int
	if err := s.Pool().QueryRow(context.Background(), `SELECT COUNT(*), MAX(version) FROM schema_version`).Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != 1 || v != PostgresSchemaVersion() {
		t.Fatalf("schema_version has %d rows, version %d", n, v)
	}
}

func TestPostgresBadURL(t *testing.T) {
	cases := []struct{ url, want string }{
		{"mysql://u@h/db", "want postgres://"},
		{"postgres://u:hunter2@/db?host=/nonexistent-metal-dir&connect_timeout=2", "connect to"},
	}
	for _, c := range cases {
		_, err := OpenPostgres(context.Background(), c.url, t.TempDir())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want error containing %q", c.url, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error shows the password: %v", c.url, err)
		}
	}
}

// Names and addresses list in bytewise order on both stores (PostgreSQL
// would otherwise sort by the database's locale, ignoring punctuation).
func TestListOrderIsBytewise(t *testing.T) {
	forEachStore(t, func(t *testing.T, env *testEnv) {
		ctx := context.Background()
		names := []string{"a_a", "a0", "a-b", "a.c", "b", "a1z"}
		for i, n := range names {
			ip := fmt.Sprintf("10.0.%d.%d", 10-i, i+1)
			if _, err := env.s.CreateMachine(ctx, Machine{Name: n, MACs: []string{fmt.Sprintf("52:54:00:aa:01:%02x", i)}}); err != nil {
				t.Fatal(err)
			}
			if err := env.s.PutLease(ctx, Lease{MAC: fmt.Sprintf("52:54:00:aa:01:%02x", i), IP: ip, State: "bound"}); err != nil {
				t.Fatal(err)
			}
		}
		ms, err := env.s.ListMachines(ctx, MachineFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range ms {
			got = append(got, m.Name)
		}
		want := slices.Sorted(slices.Values(names))
		if !slices.Equal(got, want) {
			t.Fatalf("machines listed %v, want %v", got, want)
		}
		ls, err := env.s.ListLeases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ips []string
		for _, l := range ls {
			ips = append(ips, l.IP)
		}
		if !slices.IsSorted(ips) {
			t.Fatalf("leases listed %v, not in bytewise order", ips)
		}
	})
}

// The listener's periodic wake-ups (a poll after each quiet interval) keep
// its connection: a timed-out wait must not drop and reopen it. Then a
// listener whose connection is killed by the server reconnects and still
// delivers events.
func TestPostgresListenerSurvivesTimeoutsAndKills(t *testing.T) {
	old := pgPollEvery
	pgPollEvery = 50 * time.Millisecond
	defer func() { pgPollEvery = old }()
	url := postgresURL(t)
	dirA := t.TempDir()
	a := openPostgresAt(t, url, dirA)
	b := openPostgresAt(t, url, sharedDir(t, dirA))
	time.Sleep(500 * time.Millisecond) // ~10 quiet intervals
	if n := a.relisten.Load(); n != 0 {
		t.Fatalf("listener reconnected %d times while idle", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.Pool().Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	e, err := b.AppendEvent(ctx, Event{Type: "test.after-kill"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.WaitEvents(ctx, e.ID-1); err != nil {
		t.Fatalf("A never saw the event after its listener was killed: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.relisten.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if a.relisten.Load() == 0 {
		t.Fatal("the killed listener connection was not noticed")
	}
}

// Two stores enrolling clashing machines at the same moment: exactly one
// wins each race and the other gets ErrConflict, never a duplicate.
func TestPostgresCreateRace(t *testing.T) {
	url := postgresURL(t)
	dirA := t.TempDir()
	stores := []testStore{openPostgresAt(t, url, dirA), openPostgresAt(t, url, sharedDir(t, dirA))}
	ctx := context.Background()
	for round := range 12 {
		// Same name, same MAC or same IP, in turn.
		ms := []Machine{
			{Name: fmt.Sprintf("r%d-a", round), MACs: []string{fmt.Sprintf("52:54:00:cc:%02x:01", round)}, IP: fmt.Sprintf("10.1.%d.1", round)},
			{Name: fmt.Sprintf("r%d-b", round), MACs: []string{fmt.Sprintf("52:54:00:cc:%02x:02", round)}, IP: fmt.Sprintf("10.1.%d.2", round)},
		}
		switch round % 3 {
		case 0:
			ms[1].Name = ms[0].Name
		case 1:
			ms[1].MACs = ms[0].MACs
		case 2:
			ms[1].IP = ms[0].IP
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = stores[i].CreateMachine(ctx, ms[i])
			}()
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else if !errors.Is(err, ErrConflict) {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d of 2 clashing creates succeeded: %v", round, ok, errs)
		}
	}
	all, _ := stores[0].ListMachines(ctx, MachineFilter{})
	if len(all) != 12 {
		t.Fatalf("want 12 machines, have %d", len(all))
	}
}

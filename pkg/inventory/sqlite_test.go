package inventory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openTest(t testing.TB) (*SQLite, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := OpenSQLite(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

// testStore is both halves of an inventory implementation.
type testStore interface {
	Store
	JobStore
}

// testEnv is one store under test with the backend-specific hooks the
// behavioural suite needs.
type testEnv struct {
	s   testStore
	dir string
	// reopen closes the store and opens it again on the same data (a
	// metald restart).
	reopen func(t testing.TB) testStore
	// raw returns everything the backend holds at rest, to look for
	// secrets in clear.
	raw func(t testing.TB) []byte
	// setSchema writes a schema version number into the database.
	setSchema func(t testing.TB, v int)
	schema    int
	// openDir opens the same database with another data dir.
	openDir func(dir string) error
}

// storeImpls are the implementations the behavioural suite runs against.
var storeImpls = []struct {
	name string
	open func(t testing.TB) *testEnv
}{
	{"sqlite", openSQLiteEnv},
	{"postgres", openPostgresEnv},
}

// forEachStore runs a behavioural test against every implementation.
func forEachStore(t *testing.T, fn func(t *testing.T, env *testEnv)) {
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) { fn(t, impl.open(t)) })
	}
}

func openSQLiteEnv(t testing.TB) *testEnv {
	s, dir := openTest(t)
	env := &testEnv{s: s, dir: dir, schema: SchemaVersion()}
	env.reopen = func(t testing.TB) testStore {
		env.s.Close()
		s2, err := OpenSQLite(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s2.Close() })
		env.s = s2
		return s2
	}
	env.raw = func(t testing.TB) []byte {
		env.s.Close()
		var all []byte
		for _, f := range []string{DBFile, DBFile + "-wal"} {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		return all
	}
	env.setSchema = func(t testing.TB, v int) {
		if _, err := env.s.(*SQLite).DB().Exec(fmt.Sprintf(`PRAGMA user_version = %d`, v)); err != nil {
			t.Fatal(err)
		}
	}
	env.openDir = func(d string) error {
		s, err := OpenSQLite(context.Background(), d)
		if err == nil {
			s.Close()
		}
		return err
	}
	return env
}

func TestCreateAndGet(t *testing.T) {
	forEachStore(t, func(t *testing.T, env *testEnv) {
		s := env.s
		ctx := context.Background()
		m, err := s.CreateMachine(ctx, Machine{Name: "m1", MACs: []string{"52-54-00-AA-00-01", "52:54:00:aa:00:02"},
			IP: "10.0.0.5", Tags: map[string]string{"rack": "r1"}, BMC: "ipmi://admin:hunter2@10.1.0.5:623"})
		if err != nil {
			t.Fatal(err)
		}
		if m.State != StateNew || m.MACs[0] != "52:54:00:aa:00:01" || m.Tags["rack"] != "r1" || m.IP != "10.0.0.5" {
			t.Fatalf("unexpected machine %+v", m)
		}
		if strings.Contains(m.BMC, "hunter2") || !strings.Contains(m.BMC, "admin") {
			t.Fatalf("BMC not masked: %q", m.BMC)
		}
		byMAC, err := s.MachineByMAC(ctx, "52:54:00:AA:00:02")
		if err != nil || byMAC.Name != "m1" {
			t.Fatalf("by mac: %v %+v", err, byMAC)
		}
		clear, err := s.BMCURL(ctx, "m1")
		if err != nil || clear != "ipmi://admin:hunter2@10.1.0.5:623" {
			t.Fatalf("unseal: %v %q", err, clear)
		}
		if _, err := s.GetMachine(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("want ErrNotFound, got %v", err)
		}
	})
}

func TestBMCSecretNotInDatabaseFile(t *testing.T) {
	forEachStore(t, func(t *testing.T, env *testEnv) {
		s, dir := env.s, env.dir
		ctx := context.Background()
		if _, err := s.CreateMachine(ctx, Machine{Name: "m1", MACs: []string{"52:54:00:aa:00:01"}, BMC: "redfish://root:S3cretPassw0rd@bmc1"}); err != nil {
			t.Fatal(err)
		}
		raw := env.raw(t)
		if !bytes.Contains(raw, []byte("root@bmc1")) && !bytes.Contains(raw, []byte("root:xxxxx@bmc1")) {
			t.Fatalf("raw dump does not hold the masked BMC URL: the check below would prove nothing")
		}
		if bytes.Contains(raw, []byte("S3cretPassw0rd")) {
			t.Fatalf("the database holds the BMC password in clear")
		}
		st, err := os.Stat(filepath.Join(dir, KeyFile))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("key file mode: %v %v", err, st.Mode())
		}
	})
}

func TestConflictsNameTheMachine(t *testing.T) {
	forEachStore(t, func(t *testing.T, env *testEnv) {
		s := env.s
		ctx := context.Background()
		if _, err := s.CreateMachine(ctx, Machine{Name: "m1", MACs: []string{"52:54:00:aa:00:01"}, IP: "10.0.0.5"}); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name string
			m    Machine
			want string
		}{
			{"dup name", Machine{Name: "m1", MACs: []string{"52:54:00:aa:00:09"}}, `machine "m1" already exists`},
			{"dup mac other case", Machine{Name: "m2", MACs: []string{"52:54:00:AA:00:01"}}, `already belongs to machine "m1"`},
			{"dup ip", Machine{Name: "m3", MACs: []string{"52:54:00:aa:00:03"}, IP: "10.0.0.5"}, `reserved for machine "m1"`},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				_, err := s.CreateMachine(ctx, c.m)
				if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("got %v, want conflict containing %q", err, c.want)
				}
			})
		}
		all, _ := s.ListMachines(ctx, MachineFilter{})
		if len(all) != 1 {
			t.Fatalf("stored data changed: %d machines", len(all))
		}
	})
}

func TestInvalidInput(t *testing.T) {
	forEachStore(t, func(t *testing.T, env *testEnv) {
		s := env.s
		ctx := context.Background()
		cases := []struct {
			m    Machine
			want string
		}{
			{Machine{Name: "", MACs: []string{"52:54:00:aa:00:01"}}, "name"},
			{Machine{Name: "Bad Name", MACs: []string{"52:54:00:aa:00:01"}}, "name"},
			{Machine{Name: "m1"}, "macs"},
			{Machine{Name: "m1", MACs: []string{"zz:54:00:aa:00:01"}}, `mac "zz:54:00:aa:00:01"`},
			{Machine{Name: "m1", MACs: []string{"52:54:00:aa:00:01", "52:54:00:AA:00:01"}}, "twice"},
			{Machine{Name: "m1", MACs: []string{"52:54:00:aa:00:01"}, IP: "10.0.0.300"}, "ip"},
			{Machine{Name: "m1", MACs: []string{"52:54:00:aa:00:01"}, IP: "::1"}, "ip"},
			{Machine{Name: "m1", MACs: []string{"52:54:00:aa:00:01"}, BMC: "http://x"}, "bmc"},
			{Machine{Name: "m1", MACs: []string{"52:54:00:aa:00:01"}, BMC: "ipmi://"}, "missing host"},
			{Machine{Name: "m1", MACs: []string{"52:54:00:aa:00:01"}, BMC: "ipmi://h:99999"}, "port"},
			{Machine{Name: "m1", MACs: []string{"52:54:00:aa:00:01"}, State: StateReady}, "state"},
		}
		for _, c := range cases {
			_, err := s.CreateMachine(ctx, c.m)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%+v: got %v, want invalid naming %q", c.m, err, c.want)
			}
		}
		if all, _ := s.ListMachines(ctx, MachineFilter{}); len(all) != 0 {
			t.Fatalf("invalid input stored %d machines", len(all))
		}
	})
}

func TestTransitionsWriteEvents(t *testing.T) {
	forEachStore(t, func(t *testing.T, env *testEnv) {
		s := env.s
		ctx := context.Background()
		if _, err := s.CreateMachine(ctx, Machine{Name: "m1", MACs: []string{"52:54:00:aa:00:01"}}); err != nil {
			t.Fatal(err)
		}
		path := []State{StateInspecting, StateReady, StateProvisioning, StateProvisioned, StateDeprovisioning, StateReady}
		for _, st := range path {
			if _, err := s.Transition(ctx, "m1", st, "test"); err != nil {
				t.Fatalf("→ %s: %v", st, err)
			}
		}
		_, err := s.Transition(ctx, "m1", StateProvisioned, "")
		if !errors.Is(err, ErrInvalidTransition) || !strings.Contains(err.Error(), "ready → provisioned") {
			t.Fatalf("want invalid transition, got %v", err)
		}
		m, _ := s.GetMachine(ctx, "m1")
		if m.State != StateReady {
			t.Fatalf("state changed by a refused transition: %s", m.State)
		}
		evs, err := s.ListEvents(ctx, EventFilter{Machine: "m1", Type: "machine.state"})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != len(path) {
			t.Fatalf("want %d state events, got %d", len(path), len(evs))
		}
		if evs[0].Data["from"] != "new" || evs[0].Data["to"] != "inspecting" {
			t.Fatalf("event data: %+v", evs[0].Data)
		}
	})
}

func TestEveryStateHasAWayOut(t *testing.T) {
	for _, st := range States {
		if len(AllowedTransitions(st)) == 0 {
			t.Errorf("state %s is a dead end", st)
		}
		if st.Active() {
			if CheckTransition(st, StateFailed) != nil {
				t.Errorf("active state %s cannot fail", st)
			}
		}
	}
}

func TestUpdateAndDelete(t *testing.T) {
	forEachStore(t, func(t *testing.T, env *testEnv) {
		s := env.s
		ctx := context.Background()
		s.CreateMachine(ctx, Machine{Name: "m1", MACs: []string{"52:54:00:aa:00:01"}, Tags: map[string]string{"a": "1", "b": "2"}})
		s.CreateMachine(ctx, Machine{Name: "m2", MACs: []string{"52:54:00:aa:00:02"}})
		macs := []string{"52:54:00:aa:00:02"}
		if _, err := s.UpdateMachine(ctx, "m1", MachinePatch{MACs: &macs}); !errors.Is(err, ErrConflict) {
			t.Fatalf("taking m2's MAC: %v", err)
		}
		ip := "10.0.0.9"
		m, err := s.UpdateMachine(ctx, "m1", MachinePatch{IP: &ip, Tags: map[string]string{"a": "", "c": "3"}})
		if err != nil {
			t.Fatal(err)
		}
		if m.IP != ip || m.Tags["a"] != "" || m.Tags["b"] != "2" || m.Tags["c"] != "3" || m.MACs[0] != "52:54:00:aa:00:01" {
			t.Fatalf("patched machine %+v", m)
		}
		got, _ := s.ListMachines(ctx, MachineFilter{Tags: map[string]string{"c": "3"}})
		if len(got) != 1 || got[0].Name != "m1" {
			t.Fatalf("tag filter: %+v", got)
		}
		if err := s.DeleteMachine(ctx, "m1"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteMachine(ctx, "m1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		// The MAC is free again.
		if _, err := s.CreateMachine(ctx, Machine{Name: "m3", MACs: []string{"52:54:00:aa:00:01"}}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTokens(t *testing.T) {
	forEachStore(t, func(t *testing.T, env *testEnv) {
		s := env.s
		ctx := context.Background()
		tok, secret, err := s.CreateToken(ctx, "ci")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.CheckToken(ctx, secret); err != nil || got.ID != tok.ID {
			t.Fatalf("check: %v", err)
		}
		for _, bad := range []string{"", "metal_", secret + "x", "metal_" + tok.ID + "_00", strings.Replace(secret, tok.ID, "000000000000", 1)} {
			if _, err := s.CheckToken(ctx, bad); !errors.Is(err, ErrUnauthorized) {
				t.Errorf("%q accepted", bad)
			}
		}
		if err := s.RevokeToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CheckToken(ctx, secret); !errors.Is(err, ErrUnauthorized) {
			t.Fatal("revoked token accepted")
		}
	})
}

func TestWaitEvents(t *testing.T) {
	forEachStore(t, func(t *testing.T, env *testEnv) {
		s := env.s
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- s.WaitEvents(ctx, 0) }()
		time.Sleep(50 * time.Millisecond)
		if _, err := s.AppendEvent(ctx, Event{Type: "test.ping"}); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("wait: %v", err)
		}
	})
}

func TestSchemaTooNewIsRefused(t *testing.T) {
	forEachStore(t, func(t *testing.T, env *testEnv) {
		env.setSchema(t, env.schema+1)
		err := env.openDir(env.dir)
		if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), "upgrade metald") {
			t.Fatalf("want schema-too-new, got %v", err)
		}
		// The same version opens.
		env.setSchema(t, env.schema)
		if err := env.openDir(env.dir); err != nil {
			t.Fatalf("current schema refused: %v", err)
		}
	})
}

func TestUnwritableDataDir(t *testing.T) {
	forEachStore(t, func(t *testing.T, env *testEnv) {
		dir := "/proc/self" // exists, and no one (not even root) can create files in it
		if err := env.openDir(dir); err == nil || !strings.Contains(err.Error(), "not writable") {
			t.Fatalf("want not-writable error, got %v", err)
		}
	})
}

func TestLeasesAndImages(t *testing.T) {
	forEachStore(t, func(t *testing.T, env *testEnv) {
		s := env.s
		ctx := context.Background()
		exp := time.Now().Add(time.Hour)
		if err := s.PutLease(ctx, Lease{MAC: "52:54:00:AA:00:01", IP: "10.0.0.10", State: "bound", ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
		// The same address given to another MAC replaces the old holder.
		if err := s.PutLease(ctx, Lease{MAC: "52:54:00:aa:00:02", IP: "10.0.0.10", State: "offered", ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetLease(ctx, "52:54:00:aa:00:01"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("old holder kept: %v", err)
		}
		l, err := s.LeaseByIP(ctx, "10.0.0.10")
		if err != nil || l.MAC != "52:54:00:aa:00:02" {
			t.Fatalf("by ip: %v %+v", err, l)
		}
		if err := s.PutImage(ctx, Image{Name: "ubuntu", File: "ubuntu.ova", Format: "ova", Chain: []string{"ova", "vmdk"}, Size: 10, VirtualSize: 20}); err != nil {
			t.Fatal(err)
		}
		img, err := s.GetImage(ctx, "ubuntu")
		if err != nil || len(img.Chain) != 2 {
			t.Fatalf("image: %v %+v", err, img)
		}
		if err := s.DeleteImage(ctx, "ubuntu"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteImage(ctx, "ubuntu"); !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
	})
}

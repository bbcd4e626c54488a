package agent

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metal-iaas/metal/internal/agent/agenttest"
	"github.com/metal-iaas/metal/pkg/agentapi"
)

type fakeInv struct{ n int }

func (f *fakeInv) Inventory(context.Context) agentapi.Inventory {
	f.n++
	return agentapi.Inventory{MemoryBytes: int64(f.n), Disks: []agentapi.Disk{{Name: "vda", SizeBytes: 1 << 30}}}
}

type fakeTasks struct {
	mu   sync.Mutex
	seen []string
}

func (f *fakeTasks) RunTask(ctx context.Context, t agentapi.Task, report func(agentapi.Progress)) agentapi.Result {
	f.mu.Lock()
	f.seen = append(f.seen, t.ID)
	f.mu.Unlock()
	for i := int64(1); i <= 3; i++ {
		report(agentapi.Progress{Phase: agentapi.PhaseWriting, BytesWritten: i * 10, Total: 30})
		time.Sleep(30 * time.Millisecond)
	}
	if t.Kind == agentapi.TaskWipe {
		return agentapi.Result{Error: "disk on fire"}
	}
	return agentapi.Result{Success: true, Disk: "/dev/vda", SHA256: "abc"}
}

type fakePower struct{ reboots, offs int }

func (p *fakePower) Reboot() error   { p.reboots++; return nil }
func (p *fakePower) PowerOff() error { p.offs++; return nil }

func newAgent(url string) (*Agent, *fakeInv, *fakeTasks, *fakePower) {
	inv, tasks, pw := &fakeInv{}, &fakeTasks{}, &fakePower{}
	return &Agent{
		Config:    Config{MAC: "52:54:00:00:00:01", PollInterval: 10 * time.Millisecond, ProgressEvery: 20 * time.Millisecond},
		Client:    &Client{Base: url, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond},
		Inventory: inv, Tasks: tasks, Power: pw,
	}, inv, tasks, pw
}

// The agent registers, runs queued tasks in order (inspect re-registers),
// reports progress and results with each task's own token, and carries
// out After actions.
func TestAgentRunsTasks(t *testing.T) {
	srv := agenttest.New("rack1-07")
	srv.PollIntervalSeconds = 0 // the agent's 10 ms
	hs := httptest.NewServer(srv)
	defer hs.Close()
	srv.Queue(agentapi.Task{ID: "i1", Kind: agentapi.TaskInspect, Token: "tok-i1"})
	srv.Queue(agentapi.Task{ID: "p1", Kind: agentapi.TaskProvision, Token: "tok-p1", Image: &agentapi.Image{URL: "http://x/i", VirtualSize: 30}})
	srv.Queue(agentapi.Task{ID: "w1", Kind: agentapi.TaskWipe, Token: "tok-w1", After: agentapi.AfterReboot})
	srv.Queue(agentapi.Task{ID: "bad", Kind: "dance", Token: "tok-bad"})
	a, inv, tasks, pw := newAgent(hs.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	for len(srv.Results()) < 4 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	res := srv.Results()
	if len(res) != 4 {
		t.Fatalf("results %+v", res)
	}
	// Hardware goes to metald under the task's token, for the inspection
	// and before the provision: register once, inventory three times.
	invs := srv.Inventories()
	if res[0].TaskID != "i1" || !res[0].Success || len(srv.Registrations()) != 1 || inv.n != 3 ||
		len(invs) != 2 || invs[0].TaskID != "i1" || invs[1].TaskID != "p1" || invs[0].Inventory.MemoryBytes == 0 {
		t.Errorf("inspect: result %+v, %d registrations, %d inventories collected, reports %+v", res[0], len(srv.Registrations()), inv.n, invs)
	}
	if res[1].TaskID != "p1" || !res[1].Success || res[1].Disk != "/dev/vda" {
		t.Errorf("provision result %+v", res[1])
	}
	if res[2].TaskID != "w1" || res[2].Success || res[2].Error != "disk on fire" || pw.reboots != 1 {
		t.Errorf("wipe result %+v, reboots %d", res[2], pw.reboots)
	}
	if res[3].TaskID != "bad" || res[3].Success || !strings.Contains(res[3].Error, "unknown kind") {
		t.Errorf("invalid task result %+v", res[3])
	}
	if strings.Join(tasks.seen, ",") != "p1,w1" {
		t.Errorf("task runner saw %v", tasks.seen)
	}
	var last agentapi.Progress
	n := 0
	for _, p := range srv.ProgressReports() {
		if p.TaskID == "p1" {
			last = p
			n++
		}
	}
	if n == 0 || last.BytesWritten != 30 || last.Time.IsZero() {
		t.Errorf("%d progress reports for p1, last %+v", n, last)
	}
	if reg := srv.Registrations()[0]; reg.MAC != "52:54:00:00:00:01" || reg.Version != agentapi.Version {
		t.Errorf("registration %+v", reg)
	}
}

// metald down (503) at start and while a result is due: the agent retries
// until it is back; nothing is lost.
func TestAgentRetriesWhileMetaldDown(t *testing.T) {
	srv := agenttest.New("m")
	srv.PollIntervalSeconds = 0
	srv.SetUnavailable(true)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	srv.Queue(agentapi.Task{ID: "p1", Kind: agentapi.TaskProvision, Token: "tok", Image: &agentapi.Image{URL: "http://x/i", VirtualSize: 30}})
	a, _, _, _ := newAgent(hs.URL)
	a.Config.Once = true
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	for deadline := time.Now().Add(5 * time.Second); srv.Refused(agentapi.PathRegister) < 2; {
		if time.Now().After(deadline) {
			t.Fatal("the agent did not retry registering")
		}
		time.Sleep(time.Millisecond)
	}
	if len(srv.Registrations()) != 0 {
		t.Fatal("registered while unavailable")
	}
	srv.SetUnavailable(false)
	// Make metald go away again as soon as the task is handed out.
	for len(srv.Registrations()) == 0 {
		time.Sleep(time.Millisecond)
	}
	srv.SetUnavailable(true)
	for deadline := time.Now().Add(5 * time.Second); srv.Refused(agentapi.PathResult) < 2; {
		if time.Now().After(deadline) {
			t.Fatal("the agent did not try to deliver the result")
		}
		time.Sleep(time.Millisecond)
	}
	if len(srv.Results()) != 0 {
		t.Fatal("result accepted while unavailable")
	}
	srv.SetUnavailable(false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("agent did not finish after metald came back")
	}
	if r := srv.Results(); len(r) != 1 || !r[0].Success {
		t.Fatalf("results %+v", r)
	}
	if srv.Refused(agentapi.PathRegister) == 0 || srv.Refused(agentapi.PathResult) == 0 {
		t.Errorf("refused register %d, result %d: the outage did not hit both", srv.Refused(agentapi.PathRegister), srv.Refused(agentapi.PathResult))
	}
}

// The double refuses what real metald must refuse; the client surfaces it
// as ErrRejected without retrying.
func TestServerDoubleAuth(t *testing.T) {
	srv := agenttest.New("m")
	hs := httptest.NewServer(srv)
	defer hs.Close()
	srv.Queue(agentapi.Task{ID: "t1", Kind: agentapi.TaskWipe, Token: "good"})
	c := &Client{Base: hs.URL, MinBackoff: time.Millisecond}
	ctx := context.Background()
	if _, err := c.Register(ctx, agentapi.RegisterRequest{MAC: "nope"}); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("bad mac: %v", err)
	}
	a, err := c.Register(ctx, agentapi.RegisterRequest{MAC: "52:54:00:00:00:02"})
	if err != nil || a.Task == nil || a.Task.ID != "t1" {
		t.Fatalf("assignment %+v, %v", a, err)
	}
	if err := c.Progress(ctx, "wrong", agentapi.Progress{TaskID: "t1"}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong token: %v", err)
	}
	if _, err := c.Result(ctx, "good", agentapi.Result{TaskID: "t2", Success: true}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("token for another task: %v", err)
	}
	if _, err := c.Result(ctx, "good", agentapi.Result{TaskID: "t1", Success: true}); err != nil {
		t.Errorf("good result: %v", err)
	}
	if _, err := c.Result(ctx, "good", agentapi.Result{TaskID: "t1", Success: true}); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Errorf("token reuse: %v", err)
	}
	resp, err := http.Get(hs.URL + agentapi.PathTask + "?mac=zz")
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("poll with bad mac: %v %v", resp.Status, err)
	}
}

func TestProgressCarriesLogLines(t *testing.T) {
	srv := agenttest.New("m")
	srv.PollIntervalSeconds = 0
	hs := httptest.NewServer(srv)
	defer hs.Close()
	srv.Queue(agentapi.Task{ID: "p1", Kind: agentapi.TaskProvision, Token: "tok", Image: &agentapi.Image{URL: "http://x/i", VirtualSize: 30}})
	tail := NewLogTail(slog.NewTextHandler(io.Discard, nil), 10)
	a, _, _, _ := newAgent(hs.URL)
	a.Log, a.Tail, a.Config.Once = slog.New(tail), tail, true
	a.Log.Info("before the task") // not part of the task's lines
	a.Tasks = taskFunc(func(ctx context.Context, t agentapi.Task, report func(agentapi.Progress)) agentapi.Result {
		a.Log.With("task", t.ID).Warn("image connection dropped, resuming", "offset", 42)
		a.Log.Debug("not kept")
		report(agentapi.Progress{Phase: agentapi.PhaseWriting})
		return agentapi.Result{Success: true}
	})
	if err := a.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, p := range srv.ProgressReports() {
		lines = append(lines, p.Log...)
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "WARN image connection dropped, resuming task=p1 offset=42") {
		t.Fatalf("progress log lines %q", lines)
	}
}

type taskFunc func(context.Context, agentapi.Task, func(agentapi.Progress)) agentapi.Result

func (f taskFunc) RunTask(ctx context.Context, t agentapi.Task, r func(agentapi.Progress)) agentapi.Result {
	return f(ctx, t, r)
}

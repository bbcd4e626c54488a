package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

// Inventorier collects the hardware inventory (hwinfo + LLDP).
type Inventorier interface {
	Inventory(ctx context.Context) agentapi.Inventory
}

// TaskRunner runs provision and wipe tasks; report sends progress.
type TaskRunner interface {
	RunTask(ctx context.Context, t agentapi.Task, report func(agentapi.Progress)) agentapi.Result
}

// Power carries out a task's After action.
type Power interface {
	Reboot() error
	PowerOff() error
}

// Config is the agent's configuration.
type Config struct {
	MAC          string // boot NIC, normalised
	Version      string // agent build
	Once         bool   // return after the first assignment is handled
	PollInterval time.Duration
	// ProgressEvery is the progress report period (1 s when zero).
	ProgressEvery time.Duration
}

// Agent registers and runs tasks.
type Agent struct {
	Config    Config
	Client    *Client
	Inventory Inventorier
	Tasks     TaskRunner
	Power     Power // nil: After actions are logged only
	Log       *slog.Logger
	// Tail, when set, supplies the log lines attached to progress
	// reports (wrap Log's handler with NewLogTail).
	Tail *LogTail
}

// Run registers the machine and then handles assignments until ctx ends
// (or, with Once, after the first assignment).
func (a *Agent) Run(ctx context.Context) error {
	log := a.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	poll := a.Config.PollInterval
	if poll <= 0 {
		poll = 5 * time.Second
	}
	asg, err := a.register(ctx)
	if err != nil {
		return err
	}
	log.Info("registered", "machine", asg.Machine, "task", taskID(asg.Task))
	for {
		if asg.Task != nil {
			a.handle(ctx, log, *asg.Task)
		}
		if a.Config.Once || ctx.Err() != nil {
			return ctx.Err()
		}
		wait := poll
		if asg.PollIntervalSeconds > 0 {
			wait = time.Duration(asg.PollIntervalSeconds) * time.Second
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		if asg, err = a.Client.Poll(ctx, a.Config.MAC); err != nil {
			if errors.Is(err, ErrRejected) {
				// metald forgot us (restarted with a fresh database, or the
				// machine was removed): register again.
				log.Warn("poll rejected, registering again", "err", err)
				if asg, err = a.register(ctx); err != nil {
					return err
				}
				continue
			}
			return err
		}
	}
}

func taskID(t *agentapi.Task) string {
	if t == nil {
		return ""
	}
	return t.ID
}

func (a *Agent) register(ctx context.Context) (agentapi.Assignment, error) {
	inv := a.Inventory.Inventory(ctx)
	return a.Client.Register(ctx, agentapi.RegisterRequest{
		MAC: a.Config.MAC, AgentVersion: a.Config.Version, Inventory: inv,
	})
}

// sendInventory reports the hardware under the task's token.
func (a *Agent) sendInventory(ctx context.Context, t agentapi.Task) error {
	return a.Client.Inventory(ctx, t.Token, agentapi.InventoryReport{TaskID: t.ID, Inventory: a.Inventory.Inventory(ctx)})
}

// handle runs one task and reports its result.
func (a *Agent) handle(ctx context.Context, log *slog.Logger, t agentapi.Task) {
	log = log.With("task", t.ID, "kind", t.Kind)
	start := time.Now()
	var res agentapi.Result
	if err := t.Validate(); err != nil {
		res = agentapi.Result{Error: err.Error()}
	} else {
		switch t.Kind {
		case agentapi.TaskInspect:
			// The fresh inventory is the inspection's product.
			if err := a.sendInventory(ctx, t); err != nil {
				res = agentapi.Result{Error: fmt.Sprintf("inventory: %v", err)}
			} else {
				res = agentapi.Result{Success: true}
			}
		case agentapi.TaskProvision:
			// metald records the hardware being provisioned; a lost
			// report does not stop (or delay) the provision.
			rep := agentapi.InventoryReport{TaskID: t.ID, Inventory: a.Inventory.Inventory(ctx)}
			if err := a.Client.InventoryOnce(ctx, t.Token, rep); err != nil {
				log.Warn("inventory not delivered", "err", err)
			}
			res = a.runWithProgress(ctx, log, t)
		default:
			res = a.runWithProgress(ctx, log, t)
		}
	}
	res.TaskID = t.ID
	res.Seconds = time.Since(start).Seconds()
	if !res.Success && res.Error == "" {
		res.Error = "task failed without an error text"
	}
	log.Info("task finished", "success", res.Success, "error", res.Error, "disk", res.Disk, "sha256", res.SHA256, "peak_rss_kib", peakRSSKiB())
	rr, err := a.Client.Result(ctx, t.Token, res)
	if err != nil {
		log.Error("result not delivered", "err", err)
		return
	}
	after := t.After
	if rr.After != "" {
		after = rr.After
	}
	a.after(log, after)
}

func (a *Agent) runWithProgress(ctx context.Context, log *slog.Logger, t agentapi.Task) agentapi.Result {
	every := a.Config.ProgressEvery
	if every <= 0 {
		every = time.Second
	}
	// Progress reports are sent by a single goroutine at most every
	// `every`: the task publishes its latest state, the sender picks it
	// up; the last state before the result is always sent.
	latest := make(chan agentapi.Progress, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		var pending *agentapi.Progress
		send := func() {
			if pending == nil {
				return
			}
			p := *pending
			pending = nil
			p.TaskID = t.ID
			p.Log = append(p.Log, a.Tail.Drain()...)
			if err := a.Client.Progress(ctx, t.Token, p); err != nil {
				log.Debug("progress not delivered", "err", err)
			}
		}
		for {
			select {
			case p, ok := <-latest:
				if !ok {
					send()
					return
				}
				pending = &p
			case <-tick.C:
				send()
			}
		}
	}()
	report := func(p agentapi.Progress) {
		if p.Time.IsZero() {
			p.Time = time.Now()
		}
		select {
		case <-latest: // drop the stale one
		default:
		}
		latest <- p
	}
	a.Tail.Drain() // only lines logged while this task runs
	res := a.Tasks.RunTask(ctx, t, report)
	close(latest)
	<-done
	return res
}

func (a *Agent) after(log *slog.Logger, after agentapi.After) {
	if after == agentapi.AfterWait {
		return
	}
	if a.Power == nil {
		log.Info("after action requested, no power control in this mode", "after", after)
		return
	}
	var err error
	switch after {
	case agentapi.AfterReboot:
		err = a.Power.Reboot()
	case agentapi.AfterPowerOff:
		err = a.Power.PowerOff()
	}
	if err != nil {
		log.Error("after action failed", "after", after, "err", err)
	}
}

// peakRSSKiB is the process's peak resident set (VmHWM), 0 when unknown.
func peakRSSKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

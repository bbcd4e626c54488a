// Package power carries out power and boot-device operations on the
// inventory's machines through their BMCs (pkg/bmc): fleet-wide in
// parallel, with a result per machine, the inventory's power state kept
// current, an event per change, and a jittered background poll.
package power

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/metal-iaas/metal/pkg/bmc"
	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

// Store is what the power service needs from the inventory.
type Store interface {
	ListMachines(ctx context.Context, f inventory.MachineFilter) ([]inventory.Machine, error)
	GetMachine(ctx context.Context, name string) (inventory.Machine, error)
	BMCURL(ctx context.Context, name string) (string, error)
	UpdateMachine(ctx context.Context, name string, p inventory.MachinePatch) (inventory.Machine, error)
	AppendEvent(ctx context.Context, e inventory.Event) (inventory.Event, error)
}

// Service runs BMC operations for machines.
type Service struct {
	store     Store
	mgr       *bmc.Manager
	log       *slog.Logger
	pollEvery time.Duration
}

// New returns a power service; pollEvery 0 disables the background poll.
func New(store Store, mgr *bmc.Manager, pollEvery time.Duration, log *slog.Logger) *Service {
	return &Service{store: store, mgr: mgr, log: log, pollEvery: pollEvery}
}

// Actions are the power actions, as the API names them.
var Actions = metalapi.PowerActions

func opFor(action string) (bmc.Op, error) {
	switch action {
	case "on":
		return bmc.OpPowerOn(), nil
	case "off":
		return bmc.OpPowerOff(), nil
	case "soft":
		return bmc.OpPowerSoft(), nil
	case "cycle":
		return bmc.OpPowerCycle(), nil
	case "reset":
		return bmc.OpPowerReset(), nil
	case "status":
		return bmc.OpPowerStatus(), nil
	}
	return bmc.Op{}, fmt.Errorf("%w: power action %q: want one of %s", inventory.ErrInvalid, action, strings.Join(Actions, ", "))
}

// Selector names the machines an operation applies to (the API's is
// metalapi.Selector, converted in convert.go).
type Selector struct {
	Machines []string
	Tags     map[string]string
	All      bool
}

// Result is the outcome for one machine (the API shows it as a
// metalapi.PowerResult).
type Result struct {
	Machine    string
	Action     string
	OK         bool
	PowerState string
	Error      string
	Attempts   int
	ElapsedMS  int64
}

// resolve turns a selector into machines, in name order.
func (s *Service) resolve(ctx context.Context, sel Selector) ([]inventory.Machine, error) {
	n := 0
	if len(sel.Machines) > 0 {
		n++
	}
	if len(sel.Tags) > 0 {
		n++
	}
	if sel.All {
		n++
	}
	if n != 1 {
		return nil, fmt.Errorf("%w: name machines, or give tags, or all — exactly one of them", inventory.ErrInvalid)
	}
	if len(sel.Machines) > 0 {
		seen := map[string]bool{}
		var out []inventory.Machine
		for _, name := range sel.Machines {
			if seen[name] {
				continue
			}
			seen[name] = true
			m, err := s.store.GetMachine(ctx, name)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
		return out, nil
	}
	ms, err := s.store.ListMachines(ctx, inventory.MachineFilter{Tags: sel.Tags})
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("%w: no machine matches", inventory.ErrNotFound)
	}
	return ms, nil
}

// Power runs a power action on the selected machines in parallel.
func (s *Service) Power(ctx context.Context, sel Selector, action string) ([]Result, error) {
	op, err := opFor(action)
	if err != nil {
		return nil, err
	}
	return s.run(ctx, sel, action, op, Origin{})
}

// BootDevice sets the next boot device of the selected machines.
func (s *Service) BootDevice(ctx context.Context, sel Selector, device string, persistent, efi bool) ([]Result, error) {
	dev, err := bmc.ParseBootDevice(device)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", inventory.ErrInvalid, err)
	}
	return s.run(ctx, sel, "bootdev "+string(dev), bmc.OpSetBootDevice(dev, persistent, efi), Origin{})
}

func (s *Service) run(ctx context.Context, sel Selector, action string, op bmc.Op, o Origin) ([]Result, error) {
	ms, err := s.resolve(ctx, sel)
	if err != nil {
		return nil, err
	}
	results := make([]Result, len(ms))
	var targets []bmc.Target
	var idx []int
	for i, m := range ms {
		results[i] = Result{Machine: m.Name, Action: action, PowerState: string(bmc.PowerUnknown)}
		ep, err := s.endpoint(ctx, m.Name)
		if err != nil {
			results[i].Error = err.Error()
			continue
		}
		targets = append(targets, bmc.Target{Name: m.Name, Endpoint: ep})
		idx = append(idx, i)
	}
	for j, r := range s.mgr.Each(ctx, targets, op) {
		res := &results[idx[j]]
		res.Attempts, res.ElapsedMS = r.Attempts, r.Elapsed.Milliseconds()
		res.PowerState = string(r.State)
		if r.Err != nil {
			res.Error = r.Err.Error()
		} else {
			res.OK = true
		}
		s.record(ctx, *res, o)
	}
	return results, nil
}

// endpoint unseals and parses a machine's BMC URL.
func (s *Service) endpoint(ctx context.Context, name string) (bmc.Endpoint, error) {
	raw, err := s.store.BMCURL(ctx, name)
	if errors.Is(err, inventory.ErrNotFound) {
		return bmc.Endpoint{}, errors.New(metalapi.ErrorNoBMC)
	} else if err != nil {
		return bmc.Endpoint{}, err
	}
	return bmc.ParseURL(raw)
}

// record writes the observed power state and, for actions, an event
// (naming the origin's protocol and request when there is one).
func (s *Service) record(ctx context.Context, r Result, o Origin) {
	now := time.Now()
	if r.OK && r.PowerState != "" && r.PowerState != string(bmc.PowerUnknown) {
		ps := r.PowerState
		if _, err := s.store.UpdateMachine(ctx, r.Machine, inventory.MachinePatch{PowerState: &ps, PowerAt: &now}); err != nil {
			s.log.Warn("record power state", "machine", r.Machine, "err", err)
		}
	}
	if r.Action == "status" {
		return
	}
	what := r.Action
	data := map[string]any{"action": r.Action, "ok": r.OK, "power_state": r.PowerState}
	if o.Via != "" {
		what = o.Via + " " + o.Request
		data["via"], data["request"] = o.Via, o.Request
	}
	typ, msg := "power.action", what+": ok"
	if !r.OK {
		typ, msg = "power.failed", what+": "+r.Error
	}
	if _, err := s.store.AppendEvent(ctx, inventory.Event{Machine: r.Machine, Type: typ, Message: msg, Data: data}); err != nil {
		s.log.Warn("record power event", "machine", r.Machine, "err", err)
	}
}

// Verify checks that a BMC URL answers with its credentials.
func (s *Service) Verify(ctx context.Context, name string) error {
	ep, err := s.endpoint(ctx, name)
	if err != nil {
		return err
	}
	return s.mgr.Verify(ctx, ep)
}

// Run polls every machine's power state every pollEvery, each machine at
// a jittered moment so a fleet's BMCs are not hit at once.
func (s *Service) Run(ctx context.Context) error {
	if s.pollEvery <= 0 {
		<-ctx.Done()
		return nil
	}
	timer := time.NewTimer(jitter(s.pollEvery / 10))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		s.pollOnce(ctx)
		timer.Reset(s.pollEvery/2 + jitter(s.pollEvery))
	}
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d)))
}

func (s *Service) pollOnce(ctx context.Context) {
	ms, err := s.store.ListMachines(ctx, inventory.MachineFilter{})
	if err != nil {
		s.log.Warn("power poll", "err", err)
		return
	}
	var names []string
	for _, m := range ms {
		if m.BMC != "" && m.State != inventory.StateMaintenance {
			names = append(names, m.Name)
		}
	}
	if len(names) == 0 {
		return
	}
	results, err := s.Power(ctx, Selector{Machines: names}, "status")
	if err != nil {
		s.log.Warn("power poll", "err", err)
		return
	}
	failed := 0
	for _, r := range results {
		if !r.OK {
			failed++
			s.log.Debug("power poll failed", "machine", r.Machine, "err", r.Error)
		}
	}
	s.log.Info("power poll", "machines", len(results), "failed", failed)
}

// Machine runs one action on one machine and returns its error, for
// callers (jobs, Redfish) that act on a single machine.
func (s *Service) Machine(ctx context.Context, name, action string) error {
	res, err := s.Power(ctx, Selector{Machines: []string{name}}, action)
	return firstErr(res, err)
}

// MachineBoot sets one machine's next boot device.
func (s *Service) MachineBoot(ctx context.Context, name, device string, persistent, efi bool) error {
	res, err := s.BootDevice(ctx, Selector{Machines: []string{name}}, device, persistent, efi)
	return firstErr(res, err)
}

func firstErr(res []Result, err error) error {
	if err != nil {
		return err
	}
	for _, r := range res {
		if !r.OK {
			return fmt.Errorf("%s %s: %s", r.Machine, r.Action, r.Error)
		}
	}
	return nil
}

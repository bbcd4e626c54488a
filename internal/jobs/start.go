package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/metal-iaas/metal/internal/metadata"
	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/inventory"
)

// ProvisionRequest asks for an image on a machine's disk, and what its
// first boot gets: user_data, ssh_keys, hostname (default: the machine's
// name) and config_drive (nocloud, the default; configdrive; none).
type ProvisionRequest struct {
	Image string                    `json:"image"`
	Hints *agentapi.RootDeviceHints `json:"root_device_hints,omitempty"`
	// Delta: nil chooses (on for a machine provisioned before).
	Delta *bool `json:"delta,omitempty"`
	metadata.CloudInit
}

// Provision starts a provision job.
func (s *Service) Provision(ctx context.Context, machine string, req ProvisionRequest) (inventory.Job, error) {
	if req.Image == "" {
		return inventory.Job{}, fmt.Errorf("%w: image is required", inventory.ErrInvalid)
	}
	if err := req.CloudInit.Validate(); err != nil {
		return inventory.Job{}, err
	}
	// The format is stored explicitly, so that jobs show says what the
	// agent writes.
	req.ConfigDrive, _ = agentapi.ParseConfigDriveFormat(string(req.ConfigDrive))
	lookup := s.store.GetImage
	if s.cfg.Images != nil {
		lookup = s.cfg.Images.Image
	}
	img, err := lookup(ctx, req.Image)
	if err != nil {
		return inventory.Job{}, err
	}
	p := Params{Image: img.Name, ImageURL: s.cfg.ImageURL + "/images/" + url.PathEscape(img.Name),
		RawSHA256: img.RawSHA256, VirtualSize: img.VirtualSize, Hints: req.Hints, CloudInit: req.CloudInit}
	if s.cfg.Manifests != nil {
		if m, err := s.cfg.Manifests.Manifest(ctx, img.Name); err == nil {
			p.ManifestDigest, p.ChunkURL = m.Digest(), s.cfg.ImageURL+"/chunks"
			p.Delta = s.deltaFor(ctx, machine, req.Delta)
		}
	}
	return s.start(ctx, machine, inventory.JobProvision, inventory.StateProvisioning, p)
}

// deltaFor is the delta choice of a provision: as asked, else on when
// the machine was provisioned before (its disk likely shares chunks with
// the new image; reading it costs no network).
func (s *Service) deltaFor(ctx context.Context, machine string, asked *bool) bool {
	if asked != nil {
		return *asked
	}
	jobs, err := s.store.ListJobs(ctx, machine, false, 20)
	if err != nil {
		return false
	}
	for _, j := range jobs {
		if j.Kind == inventory.JobProvision && j.State == inventory.JobSucceeded {
			return true
		}
	}
	return false
}

// Inspect starts an inspect job: boot the agent, collect the hardware
// inventory, power off, machine ready.
func (s *Service) Inspect(ctx context.Context, machine string) (inventory.Job, error) {
	return s.start(ctx, machine, inventory.JobInspect, inventory.StateInspecting, Params{})
}

// Deprovision starts a wipe job: the agent erases the disks, machine
// ready.
func (s *Service) Deprovision(ctx context.Context, machine string) (inventory.Job, error) {
	return s.start(ctx, machine, inventory.JobDeprovision, inventory.StateDeprovisioning, Params{})
}

func (s *Service) start(ctx context.Context, machine, kind string, to inventory.State, p Params) (inventory.Job, error) {
	m, err := s.store.GetMachine(ctx, machine)
	if err != nil {
		return inventory.Job{}, err
	}
	if err := inventory.CheckTransition(m.State, to); err != nil {
		hint := ""
		switch {
		case kind == inventory.JobProvision && (m.State == inventory.StateNew || m.State == inventory.StateDiscovered):
			hint = " (inspect it first, or mark it ready)"
		case kind == inventory.JobProvision && m.State == inventory.StateProvisioned:
			hint = " (deprovision it first)"
		}
		return inventory.Job{}, fmt.Errorf("machine %q: %w%s", machine, err, hint)
	}
	p.HasBMC = m.BMC != ""
	raw, err := json.Marshal(p)
	if err != nil {
		return inventory.Job{}, err
	}
	phase, limit := PhasePower, s.cfg.PowerTimeout
	if !p.HasBMC {
		phase, limit = PhaseBooting, s.cfg.BootTimeout
	}
	j, _, err := s.store.StartJob(ctx, inventory.Job{Machine: machine, Kind: kind, Phase: phase, Params: raw,
		Deadline: s.now().Add(limit)}, to, kind+" requested")
	if err != nil {
		return inventory.Job{}, err
	}
	s.log.Info("job started", "job", j.ID, "machine", machine, "kind", kind, "image", p.Image)
	if p.HasBMC {
		s.async(func() { s.powerStep(s.steps.ctx, j) })
	} else {
		s.event(ctx, machine, "job.phase", "no BMC: power the machine on (network boot) to continue",
			map[string]any{"job": j.ID, "phase": PhaseBooting})
	}
	return j, nil
}

// powerStep sets one-time PXE boot and power-cycles the machine, then
// waits for the agent. It is idempotent, so a restarted metald runs it
// again for a job it finds in the power phase.
func (s *Service) powerStep(ctx context.Context, j inventory.Job) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PowerTimeout)
	defer cancel()
	if err := s.power.MachineBoot(ctx, j.Machine, "pxe", false, s.cfg.EFI); err != nil {
		if !s.abandoned(ctx, j, PhasePower) {
			s.fail(ctx, j, "set boot device pxe: "+err.Error())
		}
		return
	}
	if err := s.power.Machine(ctx, j.Machine, "cycle"); err != nil {
		if !s.abandoned(ctx, j, PhasePower) {
			s.fail(ctx, j, "power cycle: "+err.Error())
		}
		return
	}
	if err := s.setPhase(ctx, j, PhaseBooting, s.cfg.BootTimeout, "network boot requested; waiting for the agent"); err != nil {
		s.log.Warn("job phase", "job", j.ID, "err", err)
	}
}

// finishStep ends a job whose agent succeeded: for provision, boot device
// disk and a power cycle into the installed OS; for the others, power
// off. Without a BMC the agent does the reboot or power-off itself.
func (s *Service) finishStep(ctx context.Context, j inventory.Job, p Params, reason string) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.FinishTimeout)
	defer cancel()
	if p.HasBMC {
		var err error
		if j.Kind == inventory.JobProvision {
			if err = s.power.MachineBoot(ctx, j.Machine, "disk", true, s.cfg.EFI); err == nil {
				err = s.power.Machine(ctx, j.Machine, "cycle")
			}
		} else {
			err = s.power.Machine(ctx, j.Machine, "off")
		}
		if err != nil {
			if !s.abandoned(ctx, j, PhaseFinishing) {
				s.fail(ctx, j, "after the agent succeeded: "+err.Error())
			}
			return
		}
	}
	if _, err := s.store.FinishJob(ctx, j.ID, true, "", endState(j.Kind), reason); err != nil {
		s.log.Warn("finish job", "job", j.ID, "err", err)
		return
	}
	s.log.Info("job succeeded", "job", j.ID, "machine", j.Machine, "kind", j.Kind)
}

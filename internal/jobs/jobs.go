// Package jobs runs metald's long operations — provision, inspect and
// deprovision — as persisted jobs that survive a metald restart, and
// serves the stage-2 agent's side of /agent/v1.
//
// A job moves through phases, each with a deadline:
//
//	power     set one-time PXE boot and power-cycle through the BMC
//	          (skipped, with an event, for machines without a BMC)
//	booting   wait for the agent to register
//	writing | inspecting | wiping
//	          the agent runs its task and reports progress
//	finishing set the boot device to disk and reboot (provision), or
//	          power off (inspect, deprovision)
//
// A job that misses a deadline, or whose agent reports a failure, ends
// with the machine in state failed and the reason recorded.
package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/metal-iaas/metal/internal/metadata"
	"github.com/metal-iaas/metal/internal/trust"
	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/imaging"
	"github.com/metal-iaas/metal/pkg/inventory"
)

// Store is what jobs need from the inventory.
type Store interface {
	GetMachine(ctx context.Context, name string) (inventory.Machine, error)
	MachineByMAC(ctx context.Context, mac string) (inventory.Machine, error)
	CreateMachine(ctx context.Context, m inventory.Machine) (inventory.Machine, error)
	UpdateMachine(ctx context.Context, name string, p inventory.MachinePatch) (inventory.Machine, error)
	AppendEvent(ctx context.Context, e inventory.Event) (inventory.Event, error)
	GetImage(ctx context.Context, name string) (inventory.Image, error)
	inventory.JobStore
	trust.Store
}

// Power is what jobs need from the BMC layer.
type Power interface {
	Machine(ctx context.Context, name, action string) error
	MachineBoot(ctx context.Context, name, device string, persistent, efi bool) error
}

// Config tunes the job runner.
type Config struct {
	// AdvertiseURL is metald's base URL as machines reach it.
	AdvertiseURL string
	// ImageURL is the base URL agents download /images/<name> from
	// (a cache in front of metald); AdvertiseURL when empty.
	ImageURL string
	// Guard is how the agent API trusts the provisioning network.
	Guard AgentGuard
	// Manifests gives an image's chunk manifest (images.Service); nil,
	// or an image without one, makes agents stream the image file.
	Manifests Manifests
	// Images finds a provision's image (images.Service, which reads the
	// library back from an image store on a miss); nil: the inventory.
	Images ImageLookup
	// PowerTimeout bounds the power phase, BootTimeout the wait for the
	// agent to register, ProgressTimeout the silence allowed between two
	// progress reports, FinishTimeout the final boot-device and reboot.
	PowerTimeout    time.Duration
	BootTimeout     time.Duration
	ProgressTimeout time.Duration
	FinishTimeout   time.Duration
	// StopGrace is how long Run, once its context ended, lets job steps
	// in flight (BMC calls of the power and finishing phases) finish
	// before it cancels them; a cancelled step leaves its job in its
	// phase for the next start to resume. Default 5 s.
	StopGrace time.Duration
	// DiscoverUnknown enrols agents with unknown MACs as discovered.
	DiscoverUnknown bool
	// EFI sets UEFI mode with the boot-device changes.
	EFI bool
	// Swarm shares chunks peer to peer between the agents of a wave;
	// nil: every agent fetches every chunk from metald.
	Swarm *SwarmConfig
	// Seeds renders provision config drives; nil renders them without
	// metald's network (every NIC on DHCP).
	Seeds Seeds
}

// Manifests finds an image's chunk manifest.
type Manifests interface {
	Manifest(ctx context.Context, image string) (*imaging.Manifest, error)
}

// ImageLookup finds an image's record.
type ImageLookup interface {
	Image(ctx context.Context, name string) (inventory.Image, error)
}

// Seeds renders the config drive of a provision (metadata.Service).
type Seeds interface {
	ConfigDrive(m inventory.Machine, jobID int64, ci metadata.CloudInit) (*agentapi.ConfigDrive, error)
}

type plainSeeds struct{}

func (plainSeeds) ConfigDrive(m inventory.Machine, jobID int64, ci metadata.CloudInit) (*agentapi.ConfigDrive, error) {
	return metadata.ConfigDrive(m, jobID, ci, metadata.Network{})
}

// withDefaults returns c with its zero fields filled.
func (c Config) withDefaults() Config {
	if c.PowerTimeout == 0 {
		c.PowerTimeout = 2 * time.Minute
	}
	if c.BootTimeout == 0 {
		c.BootTimeout = 15 * time.Minute
	}
	if c.ProgressTimeout == 0 {
		c.ProgressTimeout = 5 * time.Minute
	}
	if c.FinishTimeout == 0 {
		c.FinishTimeout = 2 * time.Minute
	}
	if c.StopGrace == 0 {
		c.StopGrace = 5 * time.Second
	}
	if c.Seeds == nil {
		c.Seeds = plainSeeds{}
	}
	if c.ImageURL == "" {
		c.ImageURL = c.AdvertiseURL
	}
	return c
}

// Service runs jobs.
type Service struct {
	cfg   Config
	store Store
	power Power
	log   *slog.Logger
	now   func() time.Time
	// async runs background steps (s.spawn: owned by Run); tests replace
	// it to run them inline.
	async func(func())
	steps *steps
	kick  chan struct{}
	guard *guard
}

// New returns a job service.
func New(cfg Config, store Store, power Power, log *slog.Logger) *Service {
	cfg = cfg.withDefaults()
	s := &Service{cfg: cfg, store: store, power: power, log: log, now: time.Now,
		steps: newSteps(), kick: make(chan struct{}, 1), guard: newGuard(cfg.Guard, store, log)}
	s.async = s.spawn
	return s
}

// Phases.
const (
	PhasePower      = "power"
	PhaseBooting    = "booting"
	PhaseWriting    = "writing"
	PhaseInspecting = "inspecting"
	PhaseWiping     = "wiping"
	PhaseFinishing  = "finishing"
)

// Params are what a job was asked to do.
type Params struct {
	Image       string                    `json:"image,omitempty"`
	ImageURL    string                    `json:"image_url,omitempty"`
	RawSHA256   string                    `json:"raw_sha256,omitempty"`
	VirtualSize int64                     `json:"virtual_size,omitempty"`
	Hints       *agentapi.RootDeviceHints `json:"root_device_hints,omitempty"`
	HasBMC      bool                      `json:"has_bmc"`
	// ManifestDigest is set when the image is described as chunks: the
	// agent writes chunks from ChunkURL, skipping what the disk already
	// holds with Delta.
	ManifestDigest string `json:"manifest_digest,omitempty"`
	ChunkURL       string `json:"chunk_url,omitempty"`
	Delta          bool   `json:"delta,omitempty"`
	// CloudInit is what the installed OS gets: user-data, ssh keys,
	// hostname and the config drive's format.
	metadata.CloudInit
}

func params(j inventory.Job) (Params, error) {
	var p Params
	if len(j.Params) == 0 {
		return p, nil
	}
	if err := json.Unmarshal(j.Params, &p); err != nil {
		return p, fmt.Errorf("job %d params: %w", j.ID, err)
	}
	return p, nil
}

// taskPhase is the phase in which the agent runs a job's task.
func taskPhase(kind string) string {
	switch kind {
	case inventory.JobProvision:
		return PhaseWriting
	case inventory.JobDeprovision:
		return PhaseWiping
	}
	return PhaseInspecting
}

// endState is where a job's machine goes when it succeeds.
func endState(kind string) inventory.State {
	if kind == inventory.JobProvision {
		return inventory.StateProvisioned
	}
	return inventory.StateReady
}

// event records an event, logging a failure (events are best effort
// outside transactions).
func (s *Service) event(ctx context.Context, machine, typ, msg string, data map[string]any) {
	if _, err := s.store.AppendEvent(ctx, inventory.Event{Machine: machine, Type: typ, Message: msg, Data: data}); err != nil {
		s.log.Warn("record event", "machine", machine, "type", typ, "err", err)
	}
}

// setPhase moves a running job to a phase with a fresh deadline and an
// event.
func (s *Service) setPhase(ctx context.Context, j inventory.Job, phase string, limit time.Duration, msg string) error {
	ev := &inventory.Event{Machine: j.Machine, Type: "job.phase", Message: msg,
		Data: map[string]any{"job": j.ID, "phase": phase, "timeout": limit.String()}}
	return s.store.UpdateJob(ctx, j.ID, phase, nil, s.now().Add(limit), ev)
}

// fail ends a job with the machine in state failed.
func (s *Service) fail(ctx context.Context, j inventory.Job, reason string) {
	s.leaveSwarm(j.ID)
	if _, err := s.store.FinishJob(ctx, j.ID, false, reason, inventory.StateFailed, reason); err != nil {
		s.log.Warn("fail job", "job", j.ID, "machine", j.Machine, "err", err)
		return
	}
	s.log.Warn("job failed", "job", j.ID, "machine", j.Machine, "kind", j.Kind, "reason", reason)
}

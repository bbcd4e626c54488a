// Package redfish is metald's northbound Redfish service at /redfish/v1:
// every managed machine appears as a ComputerSystem (Id = machine name)
// with its power state, boot override, status, NICs and processor and
// memory summaries; Reset and Boot-override PATCH are carried out through
// a Controller (in metald, PowerController over the power service). Clients authenticate with HTTP Basic or a Redfish session
// (POST SessionService/Sessions, X-Auth-Token); a session works only while
// the credential it was created with is valid. POST and PATCH bodies must
// be application/json (415 otherwise), so cross-site form posts cannot act.
// gofish and redfishtool work against it unchanged.
//
// The package knows nothing of the inventory or of BMCs: it defines the
// small interfaces it needs (Systems, Controller, Auth) and metald wires
// them.
package redfish

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/gin-gonic/gin"
)

// ErrNotFound is returned by Systems and Controller for an unknown machine.
var ErrNotFound = errors.New("not found")

// ErrInvalid is returned by a Controller for a request it cannot carry
// out as asked (answered 400).
var ErrInvalid = errors.New("invalid request")

// Boot override values.
const (
	BootOnce       = "Once"
	BootContinuous = "Continuous"
	BootDisabled   = "Disabled"
	BootModeUEFI   = "UEFI"
	BootModeLegacy = "Legacy"
)

// ResetTypes are the ComputerSystem.Reset types this service accepts.
var ResetTypes = []string{"On", "ForceOff", "GracefulShutdown", "ForceRestart", "PowerCycle"}

// BootTargets are the BootSourceOverrideTarget values this service accepts.
var BootTargets = []string{"None", "Pxe", "Hdd", "BiosSetup"}

// BootOverride is a machine's boot source override.
type BootOverride struct {
	Target  string // None, Pxe, Hdd, BiosSetup
	Enabled string // Once, Continuous, Disabled
	Mode    string // UEFI, Legacy
}

// System is what the service shows of one machine.
type System struct {
	Name   string
	UUID   string
	Serial string
	MACs   []string
	// PowerState is "on", "off" or anything else for unknown.
	PowerState string
	// State and Health are Redfish Status values ("Enabled", "OK", ...);
	// empty means Enabled / OK.
	State, Health string
	CPUModel      string
	CPUCount      int // sockets
	CPUCores      int // cores in total
	MemoryGiB     float64
	Boot          BootOverride
}

// Systems lists and reads machines.
type Systems interface {
	ListSystems(ctx context.Context) ([]System, error)
	// GetSystem returns ErrNotFound for an unknown name.
	GetSystem(ctx context.Context, name string) (System, error)
}

// Controller carries out actions on machines.
type Controller interface {
	// Reset performs a ComputerSystem.Reset (one of ResetTypes).
	Reset(ctx context.Context, name, resetType string) error
	// SetBoot sets the boot override: target one of BootTargets, enabled
	// Once|Continuous|Disabled, mode UEFI|Legacy.
	SetBoot(ctx context.Context, name, target, enabled, mode string) error
}

// Auth validates credentials: metal API tokens (accepted as X-Auth-Token)
// and user passwords (HTTP Basic and session login). A session remembers
// the id of the credential it was created with and works only while
// CredentialValid says so: it dies with its token, at once.
type Auth interface {
	ValidToken(ctx context.Context, token string) bool
	// CheckPassword returns the id of the credential behind user and
	// pass, or false.
	CheckPassword(ctx context.Context, user, pass string) (credential string, ok bool)
	// CredentialValid reports whether the credential is still valid
	// (neither revoked nor removed).
	CredentialValid(ctx context.Context, credential string) bool
}

// Config tunes the service.
type Config struct {
	// SessionTimeout ends idle sessions (default 30 min).
	SessionTimeout time.Duration
	// MaxSessions bounds concurrent sessions (default 1024).
	MaxSessions int
}

// Service is the Redfish service.
type Service struct {
	sys      Systems
	ctl      Controller
	auth     Auth
	log      *slog.Logger
	cfg      Config
	sessions *sessionStore
	table    []route
}

// New returns the service. log may be nil.
func New(cfg Config, sys Systems, ctl Controller, auth Auth, log *slog.Logger) *Service {
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 30 * time.Minute
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 1024
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{sys: sys, ctl: ctl, auth: auth, log: log, cfg: cfg, sessions: newSessionStore(cfg.SessionTimeout, cfg.MaxSessions)}
	s.routes()
	return s
}

// Routes contributes /redfish and /redfish/v1/... to a gin router. The
// service routes below that itself, so that unknown paths and methods get
// Redfish error bodies.
func (s *Service) Routes(r gin.IRouter) {
	h := gin.WrapH(s)
	r.Any("/redfish", h)
	r.Any("/redfish/*path", h)
}

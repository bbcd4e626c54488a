// Package agentapi holds the JSON wire types spoken between metald and the
// stage-2 agent under /agent/v1. It is shared by both ends and imports no
// other project package.
//
// The conversation, all JSON over HTTP(S):
//
//	POST /agent/v1/register   RegisterRequest  → Assignment
//	GET  /agent/v1/task?mac=M                  → Assignment (poll)
//	POST /agent/v1/inventory  InventoryReport  → 204   (Bearer task token)
//	POST /agent/v1/progress   Progress         → 204   (Bearer task token)
//	POST /agent/v1/result     Result           → ResultResponse (Bearer task token)
//
// An Assignment carries at most one Task. A task's Token is bound to one
// job of one machine and to the address the agent asked from: the agent
// sends it as "Authorization: Bearer <token>" on inventory, progress and
// result for that task only. Asking for the task again (an agent that
// restarted) hands out a fresh token and revokes the previous one. The
// server records hardware only from an InventoryReport carrying a valid
// token. Errors come back as a non-2xx status with an Error body.
package agentapi

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Version is the protocol version both ends put in their messages. A server
// refuses a request whose Version it does not speak with 400.
const Version = 1

// Routes under the agent API.
const (
	PathPrefix   = "/agent/v1"
	PathRegister = PathPrefix + "/register"
	PathTask     = PathPrefix + "/task"
	PathProgress = PathPrefix + "/progress"
	PathResult   = PathPrefix + "/result"
	// PathInventory takes the hardware inventory of an inspect or
	// provision task.
	PathInventory = PathPrefix + "/inventory"
)

// QueryMAC is the query parameter of GET PathTask naming the machine.
const QueryMAC = "mac"

// ErrInvalid is wrapped by every Validate error.
var ErrInvalid = errors.New("invalid agent message")

// TaskKind says what a task asks of the agent.
type TaskKind string

const (
	// TaskInspect asks for a fresh inventory (re-register) and a result.
	TaskInspect TaskKind = "inspect"
	// TaskProvision writes Task.Image onto the disk chosen by the hints.
	TaskProvision TaskKind = "provision"
	// TaskWipe erases partition tables and filesystem signatures on every
	// disk (or the one the hints select).
	TaskWipe TaskKind = "wipe"
)

// After says what the agent does once it has reported a result.
type After string

const (
	// AfterWait keeps the agent polling for the next task (the default).
	AfterWait After = ""
	// AfterReboot reboots the machine after the result is accepted.
	AfterReboot After = "reboot"
	// AfterPowerOff powers the machine off after the result is accepted.
	AfterPowerOff After = "poweroff"
)

// RegisterRequest is the body of POST PathRegister.
type RegisterRequest struct {
	Version int `json:"version"`
	// MAC is the boot NIC's address from the kernel command line
	// (metal.mac), lower-case colon form.
	MAC string `json:"mac"`
	// AgentVersion is the agent build, free text.
	AgentVersion string `json:"agent_version,omitempty"`
	// Inventory is a summary for the registration event only: metald
	// records hardware from an InventoryReport, which needs a task token.
	Inventory Inventory `json:"inventory"`
}

// InventoryReport is the body of POST PathInventory.
type InventoryReport struct {
	Version   int       `json:"version"`
	TaskID    string    `json:"task_id"`
	Inventory Inventory `json:"inventory"`
}

// Assignment answers register and task polls: who the machine is and what
// it should do now.
type Assignment struct {
	Version int `json:"version"`
	// Machine is the machine's name in metald, empty when unknown
	// (discovered machines).
	Machine string `json:"machine,omitempty"`
	// Task is nil when there is nothing to do: poll again after
	// PollIntervalSeconds.
	Task *Task `json:"task,omitempty"`
	// PollIntervalSeconds is how long to wait between polls; 0 means the
	// agent's default.
	PollIntervalSeconds int `json:"poll_interval_seconds,omitempty"`
}

// Task is one unit of work for the agent.
type Task struct {
	ID   string   `json:"id"`
	Kind TaskKind `json:"kind"`
	// Token authenticates progress and result for this task only.
	Token string `json:"token"`
	// Image is required for provision.
	Image *Image `json:"image,omitempty"`
	// RootDeviceHints select the target disk for provision (and restrict
	// wipe to one disk when set).
	RootDeviceHints *RootDeviceHints `json:"root_device_hints,omitempty"`
	// ConfigDrive, for provision, is written after the image is
	// verified; nil writes none.
	ConfigDrive *ConfigDrive `json:"config_drive,omitempty"`
	// After says what to do once the result is accepted.
	After After `json:"after,omitempty"`
}

// Image says where to stream a disk image from and what it must produce.
type Image struct {
	// URL is fetched with GET; the server should honour Range requests so
	// that the agent can resume after a dropped connection.
	URL string `json:"url"`
	// SHA256 is the lower-case hex digest of the raw disk the image
	// describes (its first VirtualSize bytes); empty skips verification.
	SHA256 string `json:"sha256,omitempty"`
	// VirtualSize is the raw disk size in bytes.
	VirtualSize int64 `json:"virtual_size"`
	// ManifestURL, when set, is the image's chunk manifest (GET → the
	// JSON of pkg/imaging.Manifest: fixed-size chunks of the raw disk,
	// each named by its SHA-256 or zero). The agent then writes chunks
	// instead of streaming URL, verifying each before it counts, and
	// checks the manifest against ManifestDigest.
	ManifestURL string `json:"manifest_url,omitempty"`
	// ManifestDigest is the SHA-256 of the manifest's JSON as served.
	ManifestDigest string `json:"manifest_digest,omitempty"`
	// ChunkURL is the base of the chunks: GET ChunkURL + "/" + digest →
	// the chunk's raw bytes compressed with zstd.
	ChunkURL string `json:"chunk_url,omitempty"`
	// Delta: before fetching a chunk, read that range of the target disk;
	// when it already holds the chunk, fetch and write nothing.
	Delta bool `json:"delta,omitempty"`
	// Swarm, with ManifestURL, shares chunks with the other machines of
	// the wave (PathSwarm); nil fetches every chunk from ChunkURL.
	Swarm *Swarm `json:"swarm,omitempty"`
}

// RootDeviceHints narrow the choice of target disk; every set field must
// match. With no hints the smallest disk that fits the image is chosen.
type RootDeviceHints struct {
	Serial       string `json:"serial,omitempty"`
	WWN          string `json:"wwn,omitempty"`
	Name         string `json:"name,omitempty"` // "sda" or "/dev/sda"
	MinSizeBytes int64  `json:"min_size_bytes,omitempty"`
}

// Phase names a step of a task in Progress.
type Phase string

const (
	PhaseStarting  Phase = "starting"
	PhaseWriting   Phase = "writing"
	PhaseVerifying Phase = "verifying"
	// PhaseConfigDrive: the image is verified; the config drive is written.
	PhaseConfigDrive Phase = "config-drive"
	PhaseWiping      Phase = "wiping"
	PhaseDone        Phase = "done"
)

// Progress is the body of POST PathProgress, sent about once a second.
type Progress struct {
	Version int    `json:"version"`
	TaskID  string `json:"task_id"`
	Phase   Phase  `json:"phase"`
	// BytesRead counts bytes of the image received; BytesWritten bytes of
	// raw disk written (holes count as written); Total is the raw size.
	BytesRead    int64 `json:"bytes_read"`
	BytesWritten int64 `json:"bytes_written"`
	Total        int64 `json:"total"`
	// BytesSkipped of BytesWritten were already on the disk (delta).
	BytesSkipped int64 `json:"bytes_skipped,omitempty"`
	// BytesFromPeers of BytesRead came from other agents (swarm).
	BytesFromPeers int64 `json:"bytes_from_peers,omitempty"`
	// RateBytesPerSec is the recent write rate; ETASeconds the estimate
	// to finish, -1 when unknown.
	RateBytesPerSec float64   `json:"rate_bytes_per_sec"`
	ETASeconds      float64   `json:"eta_seconds"`
	Log             []string  `json:"log,omitempty"`
	Time            time.Time `json:"time"`
}

// Result is the body of POST PathResult, sent once per task.
type Result struct {
	Version int    `json:"version"`
	TaskID  string `json:"task_id"`
	Success bool   `json:"success"`
	Error   string `json:"error,omitempty"`
	// SHA256 is the digest of the raw disk written (provision).
	SHA256 string `json:"sha256,omitempty"`
	// ConfigDrive is the partition written after the image, "/dev/vda2"
	// (provision with a config drive).
	ConfigDrive string `json:"config_drive,omitempty"`
	// ManifestDigest is the digest of the chunk manifest whose every
	// chunk was verified (provision by chunks); SHA256 is then the
	// manifest's raw SHA-256.
	ManifestDigest string `json:"manifest_digest,omitempty"`
	// BytesSkipped were already on the disk (delta provision).
	BytesSkipped int64 `json:"bytes_skipped,omitempty"`
	// BytesFromPeers and BytesFromServer are the compressed chunk bytes
	// received from other agents and from metald (provision by chunks);
	// BytesServed those this agent served to its peers.
	BytesFromPeers  int64 `json:"bytes_from_peers,omitempty"`
	BytesFromServer int64 `json:"bytes_from_server,omitempty"`
	BytesServed     int64 `json:"bytes_served,omitempty"`
	// Disk is the device written or wiped, "/dev/vda".
	Disk         string  `json:"disk,omitempty"`
	BytesWritten int64   `json:"bytes_written,omitempty"`
	Seconds      float64 `json:"seconds,omitempty"`
}

// ResultResponse acknowledges a Result; After overrides the task's After
// when set.
type ResultResponse struct {
	After After `json:"after,omitempty"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}

// NormalizeMAC parses s and returns it in lower-case colon form.
func NormalizeMAC(s string) (string, error) {
	hw, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("%w: mac %q is not a 48-bit MAC address", ErrInvalid, s)
	}
	return hw.String(), nil
}

// Validate checks what a server relies on.
func (r *RegisterRequest) Validate() error {
	if r.Version != Version {
		return fmt.Errorf("%w: version %d, want %d", ErrInvalid, r.Version, Version)
	}
	if _, err := NormalizeMAC(r.MAC); err != nil {
		return err
	}
	return nil
}

// Validate checks what an agent relies on before running the task.
func (t *Task) Validate() error {
	if t.ID == "" {
		return fmt.Errorf("%w: task without id", ErrInvalid)
	}
	if t.Token == "" {
		return fmt.Errorf("%w: task %s without token", ErrInvalid, t.ID)
	}
	switch t.After {
	case AfterWait, AfterReboot, AfterPowerOff:
	default:
		return fmt.Errorf("%w: task %s: unknown after %q", ErrInvalid, t.ID, t.After)
	}
	switch t.Kind {
	case TaskInspect, TaskWipe:
		return nil
	case TaskProvision:
		if t.Image == nil || t.Image.URL == "" {
			return fmt.Errorf("%w: provision task %s without image url", ErrInvalid, t.ID)
		}
		if t.Image.VirtualSize <= 0 {
			return fmt.Errorf("%w: provision task %s: virtual size %d", ErrInvalid, t.ID, t.Image.VirtualSize)
		}
		if s := t.Image.SHA256; s != "" && (len(s) != 64 || strings.Trim(s, "0123456789abcdef") != "") {
			return fmt.Errorf("%w: provision task %s: sha256 %q is not 64 lower-case hex digits", ErrInvalid, t.ID, s)
		}
		if t.ConfigDrive != nil {
			if err := t.ConfigDrive.Validate(); err != nil {
				return fmt.Errorf("provision task %s: %w", t.ID, err)
			}
		}
		return nil
	}
	return fmt.Errorf("%w: task %s: unknown kind %q", ErrInvalid, t.ID, t.Kind)
}

// Validate checks a result before a server records it.
func (r *Result) Validate() error {
	if r.Version != Version {
		return fmt.Errorf("%w: version %d, want %d", ErrInvalid, r.Version, Version)
	}
	if r.TaskID == "" {
		return fmt.Errorf("%w: result without task_id", ErrInvalid)
	}
	if !r.Success && r.Error == "" {
		return fmt.Errorf("%w: failed result for task %s without error text", ErrInvalid, r.TaskID)
	}
	return nil
}

// Validate checks an inventory report.
func (r *InventoryReport) Validate() error {
	if r.Version != Version {
		return fmt.Errorf("%w: version %d, want %d", ErrInvalid, r.Version, Version)
	}
	if r.TaskID == "" {
		return fmt.Errorf("%w: inventory without task_id", ErrInvalid)
	}
	return nil
}

// Validate checks a progress report.
func (p *Progress) Validate() error {
	if p.Version != Version {
		return fmt.Errorf("%w: version %d, want %d", ErrInvalid, p.Version, Version)
	}
	if p.TaskID == "" {
		return fmt.Errorf("%w: progress without task_id", ErrInvalid)
	}
	if p.BytesRead < 0 || p.BytesWritten < 0 || p.Total < 0 {
		return fmt.Errorf("%w: progress for task %s with negative byte counts", ErrInvalid, p.TaskID)
	}
	return nil
}

package metalapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Job kinds: what POST /api/v1/machines/{name}/{kind} starts.
const (
	JobProvision   = "provision"
	JobInspect     = "inspect"
	JobDeprovision = "deprovision"
)

// Job states.
const (
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
)

// Job phases, in the order a job goes through them.
const (
	PhasePower      = "power"      // setting PXE boot and power-cycling through the BMC
	PhaseBooting    = "booting"    // waiting for the agent
	PhaseWriting    = "writing"    // provision: the agent writes the image
	PhaseInspecting = "inspecting" // inspect: the agent reports the hardware
	PhaseWiping     = "wiping"     // deprovision: the agent erases the disks
	PhaseFinishing  = "finishing"  // boot device disk and power cycle, or power off
)

// Job is one long operation on one machine, as POST
// /api/v1/machines/{name}/{provision,inspect,deprovision} (202) and GET
// /api/v1/jobs[/{id}] show it. Params holds a JobParams, Progress the
// agent's latest JobProgress.
type Job struct {
	ID         int64           `json:"id" yaml:"id"`
	Machine    string          `json:"machine" yaml:"machine"`
	Kind       string          `json:"kind" yaml:"kind"`
	State      string          `json:"state" yaml:"state"`
	Phase      string          `json:"phase" yaml:"phase"`
	Params     json.RawMessage `json:"params,omitempty" yaml:"params,omitempty"`
	Progress   json.RawMessage `json:"progress,omitempty" yaml:"progress,omitempty"`
	Error      string          `json:"error,omitempty" yaml:"error,omitempty"`
	Deadline   time.Time       `json:"deadline,omitzero" yaml:"deadline,omitempty"`
	CreatedAt  time.Time       `json:"created_at" yaml:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at" yaml:"updated_at"`
	FinishedAt time.Time       `json:"finished_at,omitzero" yaml:"finished_at,omitempty"`
	// AgentAddr is the address the job's agent claimed its task from;
	// empty until then.
	AgentAddr string `json:"agent_addr,omitempty" yaml:"agent_addr,omitempty"`
}

// Query parameters of GET /api/v1/jobs: machine=N, active=true (running
// jobs only), limit=N. Jobs come newest first.
const (
	QueryMachine = "machine"
	QueryActive  = "active"
	QueryLimit   = "limit"
)

// Config drive formats: what the agent writes at the end of the disk
// after the image.
const (
	// ConfigDriveNoCloud (the default) is cloud-init's NoCloud seed, a
	// partition labelled CIDATA.
	ConfigDriveNoCloud = "nocloud"
	// ConfigDriveOpenStack is OpenStack's config drive, labelled CONFIG-2.
	ConfigDriveOpenStack = "configdrive"
	// ConfigDriveNone writes nothing.
	ConfigDriveNone = "none"
)

// ParseConfigDrive accepts the config drive formats by name, "" being
// nocloud.
func ParseConfigDrive(s string) (string, error) {
	switch f := strings.ToLower(strings.TrimSpace(s)); f {
	case "":
		return ConfigDriveNoCloud, nil
	case ConfigDriveNoCloud, ConfigDriveOpenStack, ConfigDriveNone:
		return f, nil
	}
	return "", fmt.Errorf("config drive %q: want nocloud, configdrive or none", s)
}

// RootDeviceHints choose the disk an image is written to; without them
// the agent picks the smallest disk the image fits on.
type RootDeviceHints struct {
	Serial       string `json:"serial,omitempty"`
	WWN          string `json:"wwn,omitempty"`
	Name         string `json:"name,omitempty"` // "sda" or "/dev/sda"
	MinSizeBytes int64  `json:"min_size_bytes,omitempty"`
}

// CloudInit is what a provision asks of the installed OS's first boot.
type CloudInit struct {
	// UserData is cloud-init user-data (#cloud-config, a script or
	// multipart), at most 64 KiB.
	UserData string   `json:"user_data,omitempty"`
	SSHKeys  []string `json:"ssh_keys,omitempty"`
	// Hostname defaults to the machine's name.
	Hostname string `json:"hostname,omitempty"`
	// ConfigDrive is a config drive format; "" is nocloud.
	ConfigDrive string `json:"config_drive,omitempty"`
}

// ProvisionRequest is the body of POST /api/v1/machines/{name}/provision.
type ProvisionRequest struct {
	Image string           `json:"image"`
	Hints *RootDeviceHints `json:"root_device_hints,omitempty"`
	// Delta: the agent reads each chunk's range of the disk first and
	// fetches only what differs. Default: on for a machine that was
	// provisioned before.
	Delta *bool `json:"delta,omitempty"`
	CloudInit
}

// JobParams is what a job was asked to do: the content of Job.Params.
type JobParams struct {
	Image       string           `json:"image,omitempty"`
	ImageURL    string           `json:"image_url,omitempty"`
	RawSHA256   string           `json:"raw_sha256,omitempty"`
	VirtualSize int64            `json:"virtual_size,omitempty"`
	Hints       *RootDeviceHints `json:"root_device_hints,omitempty"`
	HasBMC      bool             `json:"has_bmc"`
	// ManifestDigest is set when the agent writes the image as chunks
	// (ChunkURL), with Delta when it skips what the disk already holds.
	ManifestDigest string `json:"manifest_digest,omitempty"`
	ChunkURL       string `json:"chunk_url,omitempty"`
	Delta          bool   `json:"delta,omitempty"`
	CloudInit
}

// JobProgress is the agent's latest report on a job's task: the content
// of Job.Progress.
type JobProgress struct {
	Version int    `json:"version"`
	TaskID  string `json:"task_id"`
	// Phase is the agent's step: starting, writing, verifying,
	// config-drive, wiping, done.
	Phase string `json:"phase"`
	// BytesRead counts bytes of the image received; BytesWritten bytes of
	// raw disk written (holes count as written); Total is the raw size.
	BytesRead    int64 `json:"bytes_read"`
	BytesWritten int64 `json:"bytes_written"`
	Total        int64 `json:"total"`
	// BytesSkipped of BytesWritten were already on the disk (a delta
	// provision).
	BytesSkipped int64 `json:"bytes_skipped,omitempty"`
	// BytesFromPeers of BytesRead came from other machines of the wave
	// (peer-to-peer chunk sharing).
	BytesFromPeers int64 `json:"bytes_from_peers,omitempty"`
	// RateBytesPerSec is the recent write rate; ETASeconds the estimate
	// to finish, -1 when unknown.
	RateBytesPerSec float64   `json:"rate_bytes_per_sec"`
	ETASeconds      float64   `json:"eta_seconds"`
	Log             []string  `json:"log,omitempty"`
	Time            time.Time `json:"time"`
}

package metalapi

import (
	"encoding/json"
	"time"
)

// State is a machine's lifecycle state.
type State string

// Lifecycle states (SPEC §3).
const (
	StateDiscovered     State = "discovered"
	StateNew            State = "new"
	StateInspecting     State = "inspecting"
	StateReady          State = "ready"
	StateProvisioning   State = "provisioning"
	StateProvisioned    State = "provisioned"
	StateDeprovisioning State = "deprovisioning"
	StateFailed         State = "failed"
	StateMaintenance    State = "maintenance"
)

// States lists every lifecycle state.
var States = []State{StateDiscovered, StateNew, StateInspecting, StateReady, StateProvisioning,
	StateProvisioned, StateDeprovisioning, StateFailed, StateMaintenance}

// Power states a machine shows.
const (
	PowerOn      = "on"
	PowerOff     = "off"
	PowerUnknown = "unknown"
)

// Machine is a machine as GET /api/v1/machines[/{name}] shows it.
type Machine struct {
	Name   string   `json:"name" yaml:"name"`
	MACs   []string `json:"macs" yaml:"macs"`
	UUID   string   `json:"uuid,omitempty" yaml:"uuid,omitempty"`
	Serial string   `json:"serial,omitempty" yaml:"serial,omitempty"`
	IP     string   `json:"ip,omitempty" yaml:"ip,omitempty"`
	// IP6 is the IPv6 address reserved for the machine's MACs by metald's
	// DHCPv6 server in full mode.
	IP6         string            `json:"ip6,omitempty" yaml:"ip6,omitempty"`
	Tags        map[string]string `json:"tags,omitempty" yaml:"tags,omitempty"`
	State       State             `json:"state" yaml:"state"`
	StateReason string            `json:"state_reason,omitempty" yaml:"state_reason,omitempty"`
	// BMC is the BMC URL with the password masked.
	BMC            string    `json:"bmc,omitempty" yaml:"bmc,omitempty"`
	PowerState     string    `json:"power_state" yaml:"power_state"`
	PowerCheckedAt time.Time `json:"power_checked_at,omitzero" yaml:"power_checked_at,omitempty"`
	// UEFIBoot is the UEFI network boot chain the machine gets: "ipxe",
	// "shim" (Secure Boot through Debian's signed shim and GRUB), or
	// absent for metald's --uefi-boot.
	UEFIBoot  string    `json:"uefi_boot,omitempty" yaml:"uefi_boot,omitempty"`
	CreatedAt time.Time `json:"created_at" yaml:"created_at"`
	UpdatedAt time.Time `json:"updated_at" yaml:"updated_at"`
	// Hardware is the agent's hardware inventory as it reported it (the
	// Inventory of the agent protocol, pkg/agentapi), absent until the
	// machine has been inspected.
	Hardware json.RawMessage `json:"hardware,omitempty" yaml:"hardware,omitempty"`
}

// MachineCreate is the body of POST /api/v1/machines.
type MachineCreate struct {
	Name string   `json:"name"`
	MACs []string `json:"macs"`
	IP   string   `json:"ip,omitempty"`
	IP6  string   `json:"ip6,omitempty"`
	// BMC is ipmi://user:pass@host[:port], redfish://… or redfish+http://…;
	// metald seals the credentials and never shows the password again.
	BMC    string            `json:"bmc,omitempty"`
	UUID   string            `json:"uuid,omitempty"`
	Serial string            `json:"serial,omitempty"`
	Tags   map[string]string `json:"tags,omitempty"`
}

// MachinePatch is the body of PATCH /api/v1/machines/{name}. Absent fields
// stay as they are; a tag with an empty value is removed; state asks for a
// lifecycle transition, recorded with reason.
type MachinePatch struct {
	MACs   *[]string         `json:"macs,omitempty"`
	IP     *string           `json:"ip,omitempty"`
	IP6    *string           `json:"ip6,omitempty"`
	BMC    *string           `json:"bmc,omitempty"`
	UUID   *string           `json:"uuid,omitempty"`
	Serial *string           `json:"serial,omitempty"`
	Tags   map[string]string `json:"tags,omitempty"`
	State  *string           `json:"state,omitempty"`
	Reason string            `json:"reason,omitempty"`
	// UEFIBoot sets the machine's UEFI network boot chain: "ipxe",
	// "shim", or "default" (or "") for metald's --uefi-boot.
	UEFIBoot *string `json:"uefi_boot,omitempty"`
}

// Query parameters of GET /api/v1/machines: state=S, and tag=k=v
// (repeatable, all must match).
const (
	QueryState = "state"
	QueryTag   = "tag"
)

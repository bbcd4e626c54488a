package netboot

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"github.com/metal-iaas/metal/pkg/dhcp"
	"github.com/metal-iaas/metal/pkg/pxe"
)

// ErrNotFound is returned by Inventory lookups that find no machine.
var ErrNotFound = errors.New("netboot: machine not found")

// Machine is what netboot needs to know about a machine.
type Machine struct {
	MAC      net.HardwareAddr // the boot NIC
	Name     string
	State    string     // lifecycle state (SPEC §3): discovered, ready, provisioning, …
	IP       netip.Addr // reserved address in full mode; zero = from the pool
	IP6      netip.Addr // reserved IPv6 address in DHCPv6 full mode; zero = from the pool
	Hostname string     // option 12 in full mode
	Token    string     // agent token for the boot script; empty renders a placeholder
	// UEFIBoot is the machine's own UEFI boot chain; "" follows
	// Config.UEFIBoot.
	UEFIBoot pxe.UEFIBoot
}

// Hints is what a DHCP or HTTP request tells about a new machine.
type Hints struct {
	UUID        string // option 97 (hex) if present
	Arch        string // option 93 as a number, "" if absent
	VendorClass string // option 60
	Hostname    string // option 12
}

// Inventory is what netboot needs from the inventory (consumer-defined;
// metald adapts pkg/inventory to it). Leases are persisted through the
// embedded dhcp.LeaseStore.
type Inventory interface {
	MachineByMAC(ctx context.Context, mac net.HardwareAddr) (Machine, error) // ErrNotFound
	MachineByUUID(ctx context.Context, uuid string) (Machine, error)         // ErrNotFound
	// DiscoverMachine creates a machine in state "discovered" for mac (or
	// returns the existing one).
	DiscoverMachine(ctx context.Context, mac net.HardwareAddr, hints Hints) (Machine, error)
	// RecordEvent appends an event; kind is one of dhcp.offer, dhcp.ack,
	// tftp.sent, boot.script. machineName is "" for unknown MACs.
	RecordEvent(ctx context.Context, mac net.HardwareAddr, machineName, kind string, fields map[string]any) error
	dhcp.LeaseStore
}

// Event kinds recorded per MAC.
const (
	EventDHCPOffer  = "dhcp.offer"
	EventDHCPAck    = "dhcp.ack"
	EventTFTPSent   = "tftp.sent"
	EventBootScript = "boot.script"
	// EventScriptRefused: a boot script asked for from another address
	// than the machine's (full mode).
	EventScriptRefused = "security.boot_script_refused"
)

package metalapi

// Power actions of POST /api/v1/power.
const (
	PowerActionOn     = "on"     // power on
	PowerActionOff    = "off"    // power off now (hard)
	PowerActionSoft   = "soft"   // ask the OS to shut down
	PowerActionCycle  = "cycle"  // off, then on
	PowerActionReset  = "reset"  // hard reset
	PowerActionStatus = "status" // read the power state
)

// PowerActions lists the power actions.
var PowerActions = []string{PowerActionOn, PowerActionOff, PowerActionSoft, PowerActionCycle, PowerActionReset, PowerActionStatus}

// Boot devices of POST /api/v1/bootdev.
const (
	BootPXE  = "pxe"
	BootDisk = "disk"
	BootBIOS = "bios"
)

// BootDevices lists the boot devices.
var BootDevices = []string{BootPXE, BootDisk, BootBIOS}

// Selector names the machines an operation applies to: by name, by tags
// (all must match) or all of them; exactly one of the three.
type Selector struct {
	Machines []string          `json:"machines,omitempty"`
	Tags     map[string]string `json:"tags,omitempty"`
	All      bool              `json:"all,omitempty"`
}

// PowerRequest is the body of POST /api/v1/power.
type PowerRequest struct {
	Selector
	Action string `json:"action"`
}

// BootRequest is the body of POST /api/v1/bootdev: the device the
// machines boot from next (every time with Persistent), in UEFI mode with
// EFI.
type BootRequest struct {
	Selector
	Device     string `json:"device"`
	Persistent bool   `json:"persistent,omitempty"`
	EFI        bool   `json:"efi,omitempty"`
}

// ErrorNoBMC is the Error of a PowerResult or VerifyResult for a machine
// without a BMC URL.
const ErrorNoBMC = "no BMC configured"

// PowerResult is the outcome for one machine of POST /api/v1/power or
// /api/v1/bootdev, which answer 200 with one per machine even when some
// failed.
type PowerResult struct {
	Machine    string `json:"machine"`
	Action     string `json:"action"`
	OK         bool   `json:"ok"`
	PowerState string `json:"power_state"`
	Error      string `json:"error,omitempty"`
	Attempts   int    `json:"attempts,omitempty"`
	ElapsedMS  int64  `json:"elapsed_ms"`
}

// VerifyResult is the answer of POST /api/v1/machines/{name}/verify-bmc:
// whether the machine's BMC answers with its stored credentials.
type VerifyResult struct {
	Machine string `json:"machine"`
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
}

package agentapi

// Inventory is the hardware the agent found, read from /proc and /sys only.
type Inventory struct {
	// Kernel is the running kernel release (uname -r).
	Kernel      string         `json:"kernel,omitempty"`
	CPU         CPU            `json:"cpu"`
	MemoryBytes int64          `json:"memory_bytes"`
	DMI         DMI            `json:"dmi"`
	Disks       []Disk         `json:"disks"`
	NICs        []NIC          `json:"nics"`
	PCI         []PCIDevice    `json:"pci,omitempty"`
	LLDP        []LLDPNeighbor `json:"lldp,omitempty"`
	// Firmware is "uefi" or "bios" (no /sys/firmware/efi).
	Firmware string `json:"firmware,omitempty"`
	// SecureBoot reports whether UEFI Secure Boot was enforced when the
	// agent's kernel was booted (always false on BIOS firmware).
	SecureBoot bool `json:"secure_boot"`
}

// CPU summarises the processors.
type CPU struct {
	Model string `json:"model"`
	Arch  string `json:"arch"`
	// Sockets, Cores (physical, all sockets) and Threads (logical CPUs).
	Sockets int      `json:"sockets"`
	Cores   int      `json:"cores"`
	Threads int      `json:"threads"`
	Flags   []string `json:"flags,omitempty"`
}

// DMI is the SMBIOS identity from /sys/class/dmi/id.
type DMI struct {
	SystemVendor  string `json:"system_vendor,omitempty"`
	SystemProduct string `json:"system_product,omitempty"`
	SystemSerial  string `json:"system_serial,omitempty"`
	SystemUUID    string `json:"system_uuid,omitempty"`
	BoardVendor   string `json:"board_vendor,omitempty"`
	BoardProduct  string `json:"board_product,omitempty"`
	BoardSerial   string `json:"board_serial,omitempty"`
}

// Disk is one whole block device (no partitions, loop, ram or dm devices).
type Disk struct {
	Name       string `json:"name"` // "sda", "nvme0n1", "vda"
	SizeBytes  int64  `json:"size_bytes"`
	Model      string `json:"model,omitempty"`
	Serial     string `json:"serial,omitempty"`
	WWN        string `json:"wwn,omitempty"`
	Rotational bool   `json:"rotational"`
	Removable  bool   `json:"removable,omitempty"`
	// ByPath is the /dev/disk/by-path name udev would give it
	// ("pci-0000:00:04.0"), derived from sysfs.
	ByPath string `json:"by_path,omitempty"`
}

// NIC is one physical network interface (no loopback or virtual devices).
type NIC struct {
	Name   string `json:"name"`
	MAC    string `json:"mac"`
	Driver string `json:"driver,omitempty"`
	Link   bool   `json:"link"`
	// SpeedMbps is -1 or 0 when the driver does not know.
	SpeedMbps int    `json:"speed_mbps"`
	PCI       string `json:"pci,omitempty"` // "0000:00:03.0"
}

// PCIDevice is one function on the PCI bus.
type PCIDevice struct {
	Address  string `json:"address"`   // "0000:00:03.0"
	VendorID string `json:"vendor_id"` // "1af4"
	DeviceID string `json:"device_id"` // "1000"
	Class    string `json:"class"`     // "020000"
	Driver   string `json:"driver,omitempty"`
}

// LLDPNeighbor is what a switch port announced on one NIC.
type LLDPNeighbor struct {
	Interface  string `json:"interface"`
	ChassisID  string `json:"chassis_id"`
	PortID     string `json:"port_id"`
	SystemName string `json:"system_name,omitempty"`
	PortDesc   string `json:"port_description,omitempty"`
}

package metalapi

import "time"

// Lease is a DHCP lease handed out in full mode, as GET /api/v1/leases
// shows it.
type Lease struct {
	MAC       string    `json:"mac" yaml:"mac"`
	IP        string    `json:"ip" yaml:"ip"`
	Hostname  string    `json:"hostname,omitempty" yaml:"hostname,omitempty"`
	State     string    `json:"state" yaml:"state"`
	ExpiresAt time.Time `json:"expires_at" yaml:"expires_at"`
	UpdatedAt time.Time `json:"updated_at" yaml:"updated_at"`
}

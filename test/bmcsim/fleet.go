package bmcsim

import (
	"fmt"
)

// Fleet is many emulated Redfish BMCs served from one process, each on
// its own 127.0.0.1 listener (bmclib addresses a BMC by host and port, so
// one port per BMC is what it needs).
type Fleet struct {
	Servers []*Server
}

// NewFleet starts n BMCs with the same credentials; cfg.Hook and
// cfg.PoweredOn apply to all, UUID and Serial are generated per BMC.
func NewFleet(n int, cfg Config, useTLS bool) (*Fleet, error) {
	if n < 1 || n > 5000 {
		return nil, fmt.Errorf("bmcsim: fleet size %d out of range 1..5000", n)
	}
	f := &Fleet{}
	for i := 0; i < n; i++ {
		c := cfg
		c.UUID, c.Serial = "", ""
		f.Servers = append(f.Servers, NewBMC(c).Start(useTLS))
	}
	return f, nil
}

// URLs are the pkg/bmc URLs of all BMCs, in order.
func (f *Fleet) URLs() []string {
	out := make([]string, len(f.Servers))
	for i, s := range f.Servers {
		out[i] = s.BMCURL()
	}
	return out
}

// PoweredOn counts BMCs whose system is on.
func (f *Fleet) PoweredOn() int {
	n := 0
	for _, s := range f.Servers {
		if s.Power() {
			n++
		}
	}
	return n
}

// Close stops all servers.
func (f *Fleet) Close() {
	for _, s := range f.Servers {
		s.Close()
	}
}

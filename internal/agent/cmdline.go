// Package agent is the stage-2 agent: it registers the machine's hardware
// with metald over the agent API (pkg/agentapi), then polls for tasks and
// runs them (inspect, provision, wipe), reporting progress and results.
// The PID 1 duties (mounts, modules, network) live in cmd/metal-agent and
// the subpackages modules, netconf, hwinfo, lldp and tasks.
package agent

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

// ErrCmdline is wrapped by command-line parse errors.
var ErrCmdline = errors.New("kernel command line")

// Cmdline holds the metal.* parameters of the kernel command line.
type Cmdline struct {
	MAC   string // metal.mac, normalised; may be empty (then: all NICs with link)
	URL   string // metal.url, metald's base URL, no trailing slash
	Debug bool   // metal.debug (bare, =1, =true, =yes)
	// LLDP is how long to listen for LLDP on every NIC before each
	// registration (metal.lldp=30s; 0 disables). Switches send every 30 s
	// by default, so the 5 s default catches a neighbour only sometimes.
	LLDP time.Duration
}

// DefaultLLDP is the LLDP listening time without metal.lldp.
const DefaultLLDP = 5 * time.Second

// ParseCmdline parses /proc/cmdline content. Words are split on white
// space; double quotes group a value with spaces as the kernel does.
func ParseCmdline(s string) (Cmdline, error) {
	c := Cmdline{LLDP: DefaultLLDP}
	for _, w := range splitCmdline(s) {
		k, v, _ := strings.Cut(w, "=")
		switch k {
		case "metal.mac":
			if v == "" {
				continue
			}
			m, err := agentapi.NormalizeMAC(v)
			if err != nil {
				return c, fmt.Errorf("%w: metal.mac=%q is not a MAC address", ErrCmdline, v)
			}
			c.MAC = m
		case "metal.url":
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return c, fmt.Errorf("%w: metal.url=%q is not an http(s) URL", ErrCmdline, v)
			}
			c.URL = strings.TrimRight(v, "/")
		case "metal.lldp":
			d, err := time.ParseDuration(v)
			if v == "0" {
				d, err = 0, nil
			}
			if err != nil || d < 0 || d > 5*time.Minute {
				return c, fmt.Errorf("%w: metal.lldp=%q is not a duration between 0 and 5m", ErrCmdline, v)
			}
			c.LLDP = d
		case "metal.debug":
			switch strings.ToLower(v) {
			case "", "1", "true", "yes", "on":
				c.Debug = true
			case "0", "false", "no", "off":
				c.Debug = false
			default:
				return c, fmt.Errorf("%w: metal.debug=%q is not a boolean", ErrCmdline, v)
			}
		}
	}
	if c.URL == "" {
		return c, fmt.Errorf("%w: metal.url missing", ErrCmdline)
	}
	return c, nil
}

func splitCmdline(s string) []string {
	var out []string
	var cur strings.Builder
	inQ, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQ = !inQ
			have = true
		case !inQ && (r == ' ' || r == '\t' || r == '\n'):
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

package inventory

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
)

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$`)

// ValidateName checks a machine or image name: lower-case letters, digits,
// '.', '_' and '-', starting and ending with a letter or digit, at most 63
// characters (a DNS label, so it can be a hostname).
func ValidateName(field, name string) error {
	if name == "" {
		return fmt.Errorf("%w: %s: must not be empty", ErrInvalid, field)
	}
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: %s %q: use 1-63 lower-case letters, digits, '.', '_' or '-', starting and ending with a letter or digit", ErrInvalid, field, name)
	}
	return nil
}

// ParseMAC parses a 48-bit MAC in any common notation: either case, its
// 12 hex digits separated by ':', '-' or '.' or not at all. It is the
// server side's one MAC parser (the agent, which imports nothing of the
// server, keeps agentapi.NormalizeMAC).
func ParseMAC(s string) (net.HardwareAddr, error) {
	digits := strings.Map(func(r rune) rune {
		if r == ':' || r == '-' || r == '.' {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if len(digits) == 12 {
		if b, err := hex.DecodeString(digits); err == nil {
			return net.HardwareAddr(b), nil
		}
	}
	return nil, fmt.Errorf("%w: mac %q is not a 48-bit MAC address (want e.g. 52:54:00:aa:00:01)", ErrInvalid, s)
}

// NormalizeMAC parses a 48-bit MAC in any common notation (ParseMAC) and
// returns it lower-case and colon-separated.
func NormalizeMAC(s string) (string, error) {
	hw, err := ParseMAC(s)
	if err != nil {
		return "", err
	}
	return hw.String(), nil
}

// NormalizeMACs normalises a list, refusing duplicates within it.
func NormalizeMACs(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("%w: macs: at least one MAC address is required", ErrInvalid)
	}
	out := make([]string, 0, len(in))
	seen := map[string]bool{}
	for _, s := range in {
		m, err := NormalizeMAC(s)
		if err != nil {
			return nil, err
		}
		if seen[m] {
			return nil, fmt.Errorf("%w: mac %s is listed twice", ErrInvalid, m)
		}
		seen[m] = true
		out = append(out, m)
	}
	return out, nil
}

// NormalizeIP validates an IPv4 address for a DHCP reservation ("" is
// allowed and means none).
func NormalizeIP(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return "", fmt.Errorf("%w: ip %q is not an IPv4 address", ErrInvalid, s)
	}
	if a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return "", fmt.Errorf("%w: ip %s cannot be assigned to a machine", ErrInvalid, s)
	}
	return a.String(), nil
}

// NormalizeIP6 validates an IPv6 address for a DHCPv6 reservation ("" is
// allowed and means none): a unicast address a machine can hold on the
// provisioning network — not an IPv4 or IPv4-mapped address, not link-local
// (the machine makes its own), not multicast, loopback or unspecified, and
// without a zone.
func NormalizeIP6(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() || a.Is4In6() {
		return "", fmt.Errorf("%w: ip6 %q is not an IPv6 address", ErrInvalid, s)
	}
	switch {
	case a.Zone() != "":
		return "", fmt.Errorf("%w: ip6 %s: a reserved address has no zone", ErrInvalid, s)
	case a.IsLinkLocalUnicast():
		return "", fmt.Errorf("%w: ip6 %s is link-local: a machine makes its own; reserve a global or unique-local address", ErrInvalid, s)
	case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback():
		return "", fmt.Errorf("%w: ip6 %s cannot be assigned to a machine", ErrInvalid, s)
	}
	return a.String(), nil
}

// bmcSchemes are pkg/bmc's Schemes (the inventory imports nothing, so it
// holds a copy; bmcschemes_test.go fails when the two differ).
var bmcSchemes = map[string]bool{"ipmi": true, "redfish": true, "redfish+https": true, "redfish+http": true}

// ValidateBMCURL checks a BMC URL's shape: a scheme pkg/bmc speaks, a
// host, optional port.
func ValidateBMCURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%w: bmc: not a URL: %v", ErrInvalid, redactErr(err, s))
	}
	if !bmcSchemes[strings.ToLower(u.Scheme)] {
		return fmt.Errorf("%w: bmc %s: scheme must be ipmi://, redfish:// or redfish+http://", ErrInvalid, RedactURL(s))
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%w: bmc %s: missing host", ErrInvalid, RedactURL(s))
	}
	if p := u.Port(); p != "" {
		var n int
		if _, err := fmt.Sscanf(p, "%d", &n); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%w: bmc %s: bad port %q", ErrInvalid, RedactURL(s), p)
		}
	}
	return nil
}

// redactErr keeps a URL parse error from echoing a password.
func redactErr(err error, raw string) string {
	msg := err.Error()
	if raw != "" {
		msg = strings.ReplaceAll(msg, raw, "<url>")
	}
	return msg
}

// ValidateTags checks tag keys and values.
func ValidateTags(tags map[string]string) error {
	for k, v := range tags {
		if k == "" || len(k) > 63 || strings.ContainsAny(k, "=, \t\n") {
			return fmt.Errorf("%w: tag key %q: 1-63 characters without '=', ',' or spaces", ErrInvalid, k)
		}
		if len(v) > 255 || strings.ContainsAny(v, "\n\x00") {
			return fmt.Errorf("%w: tag %s: value too long or has control characters", ErrInvalid, k)
		}
	}
	return nil
}

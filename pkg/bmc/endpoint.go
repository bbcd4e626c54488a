package bmc

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Protocol is how metal talks to a BMC.
type Protocol string

// Protocols.
const (
	ProtocolIPMI    Protocol = "ipmi"
	ProtocolRedfish Protocol = "redfish"
)

const (
	redactedPassword   = "xxxxx"
	defaultIPMIPort    = 623
	defaultIPMICipher  = 3
	defaultHTTPSPort   = 443
	defaultHTTPPort    = 80
	schemeIPMI         = "ipmi"
	schemeRedfish      = "redfish"
	schemeRedfishPlain = "redfish+http"
	schemeRedfishTLS   = "redfish+https"
)

// Endpoint is a parsed BMC URL. Its String and LogValue methods mask the
// password; URL returns it in full (for storage, never for logs).
type Endpoint struct {
	Protocol Protocol
	Host     string // host name or IP address, without brackets or port
	Port     int
	Username string
	Password string
	// Cipher is the IPMI cipher suite (ipmitool -C); 3 unless ?cipher=N.
	Cipher int
	// PlainHTTP selects http:// for Redfish (scheme redfish+http).
	PlainHTTP bool
	// Insecure skips TLS certificate verification (?insecure=1).
	Insecure bool
}

// Schemes are the BMC URL schemes ParseURL accepts (the inventory keeps
// a copy that a test holds equal).
var Schemes = []string{schemeIPMI, schemeRedfish, schemeRedfishTLS, schemeRedfishPlain}

// ParseURL parses a BMC URL (metald checks BMC URLs with it before
// storing them): ipmi://user:pass@host[:port][?cipher=N],
// redfish://user:pass@host[:port][?insecure=1] or
// redfish+http://user:pass@host[:port]. Errors wrap ErrInvalidURL and
// never contain the password.
func ParseURL(s string) (Endpoint, error) {
	bad := func(format string, a ...any) (Endpoint, error) {
		return Endpoint{}, fmt.Errorf("%w: %s", ErrInvalidURL, fmt.Sprintf(format, a...))
	}
	if strings.TrimSpace(s) == "" {
		return bad("empty")
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Error echoes the input, password included: report the
		// position-free cause only.
		if ue, ok := err.(*url.Error); ok {
			return bad("%v", ue.Err)
		}
		return bad("cannot parse")
	}
	var ep Endpoint
	switch strings.ToLower(u.Scheme) {
	case schemeIPMI:
		ep.Protocol, ep.Port, ep.Cipher = ProtocolIPMI, defaultIPMIPort, defaultIPMICipher
	case schemeRedfish, schemeRedfishTLS:
		ep.Protocol, ep.Port = ProtocolRedfish, defaultHTTPSPort
	case schemeRedfishPlain:
		ep.Protocol, ep.Port, ep.PlainHTTP = ProtocolRedfish, defaultHTTPPort, true
	case "":
		return bad("missing scheme: scheme must be ipmi://, redfish:// or redfish+http://")
	default:
		return bad("unknown scheme %q: scheme must be ipmi://, redfish:// or redfish+http://", u.Scheme)
	}
	if u.Opaque != "" {
		return bad("missing // after scheme")
	}
	if u.User == nil || u.User.Username() == "" {
		return bad("missing user name (want %s://user:pass@host)", u.Scheme)
	}
	ep.Username = u.User.Username()
	pass, ok := u.User.Password()
	if !ok {
		return bad("missing password (want %s://user:pass@host)", u.Scheme)
	}
	ep.Password = pass
	ep.Host = u.Hostname()
	if ep.Host == "" {
		return bad("missing host")
	}
	if !validHost(ep.Host) {
		return bad("invalid host %q", ep.Host)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return bad("invalid port %q", p)
		}
		ep.Port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return bad("empty port")
	}
	if u.Path != "" && u.Path != "/" {
		return bad("unexpected path %q", u.Path)
	}
	if u.Fragment != "" {
		return bad("unexpected fragment")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("invalid query: %v", err)
	}
	for k, vs := range q {
		v := vs[len(vs)-1]
		switch {
		case k == "cipher" && ep.Protocol == ProtocolIPMI:
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 17 {
				return bad("invalid cipher suite %q (want 0-17)", v)
			}
			ep.Cipher = n
		case k == "insecure" && ep.Protocol == ProtocolRedfish && !ep.PlainHTTP:
			b, err := parseBool(v)
			if err != nil {
				return bad("invalid insecure value %q (want 1 or 0)", v)
			}
			ep.Insecure = b
		default:
			return bad("unknown parameter %q for scheme %s", k, u.Scheme)
		}
	}
	return ep, nil
}

// validHost accepts IP addresses and DNS-style names.
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on", "":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean")
}

// Address is host:port (IPv6 hosts bracketed).
func (e Endpoint) Address() string {
	return net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
}

func (e Endpoint) scheme() string {
	switch {
	case e.Protocol == ProtocolIPMI:
		return schemeIPMI
	case e.PlainHTTP:
		return schemeRedfishPlain
	default:
		return schemeRedfish
	}
}

func (e Endpoint) format(pass string) string {
	u := url.URL{Scheme: e.scheme(), User: url.UserPassword(e.Username, pass), Host: e.Address()}
	q := url.Values{}
	if e.Protocol == ProtocolIPMI && e.Cipher != defaultIPMICipher {
		q.Set("cipher", strconv.Itoa(e.Cipher))
	}
	if e.Insecure && e.Protocol == ProtocolRedfish && !e.PlainHTTP {
		q.Set("insecure", "1")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// URL is the endpoint as a URL including the password. Use it to store
// the endpoint (encrypted), never to log it.
func (e Endpoint) URL() string { return e.format(e.Password) }

// Redacted is the endpoint as a URL with the password masked.
func (e Endpoint) Redacted() string { return e.format(redactedPassword) }

// String is Redacted, so that %v and %s never print the password.
func (e Endpoint) String() string { return e.Redacted() }

// GoString is Redacted, so that %#v never prints the password.
func (e Endpoint) GoString() string { return "bmc.Endpoint(" + e.Redacted() + ")" }

// LogValue makes slog print the redacted URL.
func (e Endpoint) LogValue() slog.Value { return slog.StringValue(e.Redacted()) }

package bmc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"time"

	"github.com/bmc-toolbox/bmclib/v2/providers/ipmitool"
	"github.com/bmc-toolbox/bmclib/v2/providers/redfish"
	"github.com/go-logr/logr"
)

// driver is the subset of a bmclib provider this package uses. Both
// bmclib's ipmitool and gofish (Redfish) providers implement it; exactly
// one is used per endpoint, so bmclib never falls through to a provider
// the operator did not ask for.
type driver interface {
	Open(ctx context.Context) error
	Close(ctx context.Context) error
	PowerStateGet(ctx context.Context) (string, error)
	PowerSet(ctx context.Context, state string) (bool, error)
	BootDeviceSet(ctx context.Context, device string, persistent, efi bool) (bool, error)
}

// mediaDriver is implemented by providers that offer virtual media.
type mediaDriver interface {
	SetVirtualMedia(ctx context.Context, kind, mediaURL string) (bool, error)
}

// newDriverFunc builds the driver for an endpoint; tests may replace it.
type newDriverFunc func(ep Endpoint, timeout time.Duration) (driver, error)

// newBMCLibDriver builds bmclib's provider for the endpoint's protocol.
func newBMCLibDriver(ep Endpoint, timeout time.Duration, cache tls.ClientSessionCache) (driver, error) {
	switch ep.Protocol {
	case ProtocolIPMI:
		path, err := exec.LookPath("ipmitool")
		if err != nil {
			return nil, fmt.Errorf("%w: ipmitool not found in PATH (install the Debian package ipmitool)", ErrToolMissing)
		}
		return ipmitool.New(ep.Host, ep.Username, ep.Password,
			ipmitool.WithPort(strconv.Itoa(ep.Port)),
			ipmitool.WithCipherSuite(strconv.Itoa(ep.Cipher)),
			ipmitool.WithIpmitoolPath(path),
			ipmitool.WithLogger(logr.Discard()),
		)
	case ProtocolRedfish:
		scheme := "https://"
		if ep.PlainHTTP {
			scheme = "http://"
		}
		host := ep.Host
		if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
			host = "[" + host + "]"
		}
		return redfish.New(scheme+host, ep.Username, ep.Password, logr.Discard(),
			redfish.WithPort(strconv.Itoa(ep.Port)),
			redfish.WithHttpClient(newHTTPClient(ep, timeout, cache)),
		), nil
	}
	return nil, fmt.Errorf("%w: unknown protocol %q", ErrInvalidURL, ep.Protocol)
}

// newHTTPClient is a client for one BMC: certificate verification unless
// the endpoint says insecure, bounded dial and handshake times, and TLS
// session resumption through the Manager's cache (gofish opens a new
// connection for every request, and a full handshake costs a BMC's small
// CPU far more than a resumed one).
func newHTTPClient(ep Endpoint, timeout time.Duration, cache tls.ClientSessionCache) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{InsecureSkipVerify: ep.Insecure, MinVersion: tls.VersionTLS12, ClientSessionCache: addrCache{cache, ep.Address()}}, //nolint:gosec // operator opted in with ?insecure=1
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       30 * time.Second,
		ForceAttemptHTTP2:     false,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// errNotOK is returned when a provider reports ok=false without an error.
var errNotOK = errors.New("provider returned failure without detail")

// addrCache keys TLS sessions by BMC address (host:port). crypto/tls keys
// them by server name, which is the bare host: BMCs that share an IP
// address on different ports would otherwise overwrite each other's
// tickets and never resume.
type addrCache struct {
	tls.ClientSessionCache
	addr string
}

func (c addrCache) Get(key string) (*tls.ClientSessionState, bool) {
	if c.ClientSessionCache == nil {
		return nil, false
	}
	return c.ClientSessionCache.Get(c.addr + "|" + key)
}

func (c addrCache) Put(key string, cs *tls.ClientSessionState) {
	if c.ClientSessionCache != nil {
		c.ClientSessionCache.Put(c.addr+"|"+key, cs)
	}
}

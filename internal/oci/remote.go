// Package oci is metald's registry client: it pulls disk images out of
// OCI registries (containerDisks, OCI 1.1 artifacts, ORAS pushes, image
// indexes; pkg/ocidisk knows the shapes) and pushes stored images as OCI
// artifacts, over go-containerregistry (distribution spec, basic and
// bearer token auth, Docker-style auth files). TLS is verified and plain
// HTTP refused unless asked for. Only metald links it.
package oci

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/metal-iaas/metal/pkg/ocidisk"
)

// Scheme is the prefix of a registry reference.
const Scheme = "oci://"

// Errors, for the caller to map to its statuses. Each wraps a message
// naming what was refused.
var (
	// ErrNotFound: the tag, digest or repository does not exist.
	ErrNotFound = errors.New("not in the registry")
	// ErrAuth: the registry wants credentials, or refused those given.
	ErrAuth = errors.New("registry authentication")
	// ErrRefused: anything else the registry or its content failed at
	// (no disk, a bad digest, a bad reference, an unreachable registry).
	ErrRefused = errors.New("registry refused")
)

// Options of one pull or push.
type Options struct {
	// Username and Password, when set, are sent (basic, or exchanged for
	// a bearer token as the registry asks); otherwise Keychain answers.
	Username, Password string
	// Keychain is consulted without explicit credentials;
	// authn.DefaultKeychain (REGISTRY_AUTH_FILE, $DOCKER_CONFIG,
	// ~/.docker/config.json) when nil.
	Keychain authn.Keychain
	// PlainHTTP allows talking to the registry without TLS; otherwise
	// TLS is required and verified.
	PlainHTTP bool
	// Platform picks an index's entry (ocidisk.DefaultPlatform when
	// zero).
	Platform ocidisk.Platform
	// Transport is the base round tripper (http.DefaultTransport when
	// nil).
	Transport http.RoundTripper
	// UserAgent names the caller.
	UserAgent string
	// MaxBlob refuses a manifest naming a layer larger (0: no bound); a
	// blob longer than its descriptor says is refused whatever it is.
	MaxBlob int64
}

// ParseRef reads oci://HOST[:PORT]/REPO(:TAG|@sha256:…). A tag or a
// digest is required: nothing is assumed to be "latest".
func ParseRef(s string, plainHTTP bool) (name.Reference, error) {
	rest, ok := strings.CutPrefix(s, Scheme)
	if !ok {
		return nil, fmt.Errorf("%w: %q is not an %sHOST/REPO:TAG reference", ErrRefused, s, Scheme)
	}
	slash := strings.IndexByte(rest, '/')
	if slash <= 0 {
		return nil, fmt.Errorf("%w: %q names no registry host (%sHOST[:PORT]/REPO:TAG)", ErrRefused, s, Scheme)
	}
	repo := rest[slash+1:]
	if !strings.Contains(repo, "@") && !strings.Contains(repo[strings.LastIndexByte(repo, '/')+1:], ":") {
		return nil, fmt.Errorf("%w: %q names no tag or digest (add :TAG or @sha256:…)", ErrRefused, s)
	}
	opts := []name.Option{name.StrictValidation}
	if plainHTTP {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(rest, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrRefused, s, err)
	}
	return ref, nil
}

// remoteOptions are go-containerregistry's options for o.
func (o Options) remoteOptions() []remote.Option {
	base := o.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	opts := []remote.Option{remote.WithTransport(&tlsOnly{base: base, plain: o.PlainHTTP})}
	switch {
	case o.Username != "" || o.Password != "":
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: o.Username, Password: o.Password}))
	case o.Keychain != nil:
		opts = append(opts, remote.WithAuthFromKeychain(o.Keychain))
	default:
		opts = append(opts, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	}
	if o.UserAgent != "" {
		opts = append(opts, remote.WithUserAgent(o.UserAgent))
	}
	return opts
}

// tlsOnly refuses plain-HTTP requests unless they were asked for:
// go-containerregistry falls back to HTTP for loopback and private
// addresses on its own.
type tlsOnly struct {
	base  http.RoundTripper
	plain bool
}

func (t *tlsOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && !t.plain {
		return nil, fmt.Errorf("registry %s over plain HTTP refused: TLS is required unless --plain-http is given", r.URL.Host)
	}
	return t.base.RoundTrip(r)
}

// classify turns a registry error into one of the package's errors,
// naming what failed.
func classify(err error, what string) error {
	if err == nil {
		return nil
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized:
			return fmt.Errorf("%w: %s: the registry wants credentials it was not given or refused them (--creds USER:PASS, --password-stdin, or metald's REGISTRY_AUTH_FILE / ~/.docker/config.json): %v", ErrAuth, what, err)
		case http.StatusForbidden:
			return fmt.Errorf("%w: %s: access denied by the registry: %v", ErrAuth, what, err)
		case http.StatusNotFound:
			return fmt.Errorf("%w: %s does not exist: %v", ErrNotFound, what, err)
		}
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return fmt.Errorf("%w: %s does not exist: %v", ErrNotFound, what, err)
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return fmt.Errorf("%w: %s: %v", ErrAuth, what, err)
			}
		}
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrAuth) || errors.Is(err, ErrRefused) {
		return err
	}
	return fmt.Errorf("%w: %s: %v", ErrRefused, what, err)
}

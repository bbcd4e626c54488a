package server

import (
	"net/http"
	"strings"
)

// Role says which routes a listener serves.
type Role string

const (
	// RoleAll serves every route: the one listener without TLS and
	// without a separate API listener, or the HTTPS listener with TLS and
	// without one.
	RoleAll Role = "all"
	// RoleMachines serves what machines fetch: boot files, the agent API,
	// images and metadata.
	RoleMachines Role = "machines"
	// RoleBoot serves what must stay on plain HTTP once TLS is on: the
	// boot files iPXE fetches (it does not trust metald's CA) and the
	// metadata installed operating systems fetch.
	RoleBoot Role = "boot"
	// RoleAPI serves the operator's routes: /api/v1, the dashboard,
	// Redfish and /metrics; never the machines' routes.
	RoleAPI Role = "api"
)

// bootPaths stay on plain HTTP with TLS (path prefixes).
// The metadata versions are internal/metadata's (its test checks that
// every metadata route is here).
var bootPaths = []string{"/boot.ipxe", "/ipxe/", "/agent/vmlinuz", "/agent/initrd", "/nocloud/", "/latest/",
	"/2009-04-04/", "/2016-09-02/", "/2018-09-24/", "/2021-03-23/"}

// machinePaths are the rest of what machines fetch, HTTPS-only with TLS.
var machinePaths = []string{"/agent/v1/", "/images/", "/chunks/"}

func hasAnyPrefix(p string, prefixes []string) bool {
	for _, x := range prefixes {
		if strings.HasPrefix(p, x) {
			return true
		}
	}
	return false
}

// Serves says whether a listener of role r answers path. /healthz is
// answered everywhere.
func (r Role) Serves(path string) bool {
	if path == "/healthz" {
		return true
	}
	boot := hasAnyPrefix(path, bootPaths)
	machine := boot || hasAnyPrefix(path, machinePaths)
	switch r {
	case RoleMachines:
		return machine
	case RoleBoot:
		return boot
	case RoleAPI:
		return !machine
	default:
		return true
	}
}

// forRole answers 421 Misdirected Request for paths the listener does not
// serve, so a route reaches only the network it is meant for.
func (s *Server) forRole(role Role, name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !role.Serves(r.URL.Path) {
			s.misdirected.WithLabelValues(name).Inc()
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusMisdirectedRequest)
			_, _ = w.Write([]byte(`{"error":"not served on this listener (` + name + `)","code":"misdirected"}` + "\n"))
			return
		}
		s.ServeHTTP(w, r)
	})
}

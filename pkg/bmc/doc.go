// Package bmc controls machines through their baseboard management
// controllers: power status and power actions, the next boot device and,
// where Redfish offers it, virtual media.
//
// It drives BMCs through bmclib v2: IPMI through bmclib's ipmitool provider
// (the Debian ipmitool binary must be installed) and Redfish through
// bmclib's gofish provider. Exactly one provider is used per endpoint, chosen
// by the URL scheme; no bmclib or gofish type appears in this package's API.
//
// BMC endpoints are URLs:
//
//	ipmi://user:pass@host[:port][?cipher=N]      (UDP 623, cipher suite 3)
//	redfish://user:pass@host[:port][?insecure=1] (HTTPS 443)
//	redfish+http://user:pass@host[:port]         (plain HTTP 80)
//
// Passwords never leave the package in logs or errors: Endpoint.String
// masks them and every error is scrubbed of the password before it is
// returned.
//
// A Manager runs operations: one at a time per BMC (host:port), at most
// Config.Concurrency at once overall, each bounded by Config.Timeout, with
// retries and backoff only for transient failures. Manager.Each fans one
// operation out over many machines.
package bmc

// Package dhcp is metald's DHCPv4 wire layer on github.com/insomniacslk/dhcp:
// interface-bound UDP listeners (port 67, and 4011 for ProxyDHCP), a bounded
// worker pool, RFC 2131 §4.1 reply addressing, malformed-packet accounting and
// Prometheus counters. It knows packets, not machines: a Handler decides
// every answer. Allocator implements RFC 2131 address management (pool,
// reservations, leases) over a consumer-supplied LeaseStore; it is one
// building block a Handler can use.
package dhcp

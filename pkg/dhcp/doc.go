// Package dhcp is metald's DHCP wire layer on github.com/insomniacslk/dhcp.
// DHCPv4: interface-bound UDP listeners (port 67, and 4011 for ProxyDHCP),
// a bounded worker pool, RFC 2131 §4.1 reply addressing, malformed-packet
// accounting and Prometheus counters; Allocator implements RFC 2131
// address management (pool, reservations, leases) over a consumer-supplied
// LeaseStore. DHCPv6 (the *6 files): Server6 on [::]:547 joined to
// ff02::1:2, relay encapsulation, Parse6's RFC 8415 checks, ClientMAC6
// (a DUID is not a MAC), and Allocator6 for stateful IA_NA addresses over
// a LeaseStore of its own. It knows packets, not machines: a Handler (or
// Handler6) decides every answer; the allocators are building blocks a
// handler can use.
package dhcp

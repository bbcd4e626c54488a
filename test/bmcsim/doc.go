// Package bmcsim provides BMC emulators for tests, benchmarks and the demo:
// a Redfish BMC written in Go (BMC, Fleet) that bmclib's Redfish provider,
// gofish and redfishtool drive unchanged, and a harness around OpenIPMI's
// ipmi_sim (IPMISim) whose chassis control starts and stops a QEMU VM.
//
// Everything listens on 127.0.0.1 only.
package bmcsim

// Package e2e holds metal's end-to-end tests: the real metald (full DHCP
// in a private network namespace), ipmi_sim BMCs driving QEMU VMs with
// blank disks, metalctl, the netbooted agent and a bootable test OS image
// (test/lab). They need root, QEMU, OpenIPMI, syslinux and mtools;
// under METAL_REQUIRE_ALL=1 a missing prerequisite fails instead of
// skipping. Every test has its own namespace (same addresses inside, so
// nothing collides); the single-VM tests run in parallel, two at a time
// on CI's two cores, after the two-VM cloud-init test.
package e2e

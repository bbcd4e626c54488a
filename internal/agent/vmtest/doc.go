// Package vmtest boots the real stage-2 initramfs (Debian's kernel, the
// static agent as /init) in QEMU inside a network namespace that the test
// creates, with dnsmasq as DHCP server and the agenttest double of metald,
// and drives it through register, provision and wipe. It holds tests only.
package vmtest

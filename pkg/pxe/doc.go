// Package pxe is metald's boot policy: it classifies DHCP clients by
// architecture and firmware (options 60, 77, 93, 175), chooses what they
// boot (an iPXE binary over TFTP, a UEFI HTTP Boot URL, or — for iPXE
// itself — the per-machine script URL, which breaks the chainload loop),
// builds ProxyDHCP answers and renders the iPXE scripts from templates/;
// for Secure Boot (UEFIBoot shim, shim.go) it hands UEFI x86-64 firmware
// Debian's signed shim instead and renders the per-machine GRUB
// configurations (grub.go) from the same targets.
// Serving the files is pkg/bootfs's. It imports pkg/dhcp only for its
// reply addressing constants.
package pxe

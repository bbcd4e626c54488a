// Package pxe is metald's boot policy: it classifies DHCP clients by
// architecture and firmware (options 60, 77, 93, 175), chooses what they
// boot (an iPXE binary over TFTP, a UEFI HTTP Boot URL, or — for iPXE
// itself — the per-machine script URL, which breaks the chainload loop),
// builds ProxyDHCP answers and renders the iPXE scripts from templates/.
// Serving the files is pkg/bootfs's. It imports pkg/dhcp only for its
// reply addressing constants.
package pxe

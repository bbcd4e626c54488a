// Package templates embeds the iPXE script templates (text/template) that
// pkg/pxe renders for /boot.ipxe: agent.ipxe (netboot the stage-2 agent),
// localboot.ipxe (boot the local disk) and maintenance.ipxe (do nothing);
// and the same three as GRUB configurations (*.grub) for the Secure Boot
// chain (shim → GRUB), served over TFTP as grub/grub.cfg-<MAC>.
package templates

import (
	"embed"
	"io/fs"
)

//go:embed *.ipxe *.grub
var files embed.FS

// FS returns the templates as a flat read-only file system.
func FS() fs.FS { return files }

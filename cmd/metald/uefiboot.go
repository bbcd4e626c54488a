package main

import (
	"fmt"
	"path/filepath"

	"github.com/metal-iaas/metal/internal/netboot"
	"github.com/metal-iaas/metal/pkg/pxe"
)

// agentDir is --agent-dir, default <data-dir>/agent.
func (c *Config) agentDir() string {
	if c.AgentDir != "" {
		return c.AgentDir
	}
	return filepath.Join(c.DataDir, "agent")
}

// uefiBoot puts --uefi-boot and --shim-dir (default: the agent
// directory, where make agent puts shimx64.efi and grubx64.efi) into the
// boot services' configuration.
func (c *Config) uefiBoot(nc *netboot.Config) error {
	u, err := pxe.ParseUEFIBoot(c.UEFIBoot)
	if err != nil {
		return fmt.Errorf("--uefi-boot: %v", err)
	}
	nc.UEFIBoot = u
	nc.ShimDir = c.ShimDir
	if nc.ShimDir == "" {
		nc.ShimDir = c.agentDir()
	}
	return nil
}

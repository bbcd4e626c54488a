package agent

import (
	"context"
	"log/slog"

	"github.com/metal-iaas/metal/internal/agent/hwinfo"
	"github.com/metal-iaas/metal/pkg/agentapi"
)

// SysInventory collects the inventory from /proc and /sys below Root and
// adds the LLDP neighbours that LLDP returns (nil: none).
type SysInventory struct {
	Root string
	LLDP func(ctx context.Context) []agentapi.LLDPNeighbor
	Log  *slog.Logger
}

// Inventory implements Inventorier.
func (s *SysInventory) Inventory(ctx context.Context) agentapi.Inventory {
	root := s.Root
	if root == "" {
		root = "/"
	}
	inv, errs := hwinfo.Collect(root)
	for _, err := range errs {
		if s.Log != nil {
			s.Log.Warn("inventory incomplete", "err", err)
		}
	}
	if s.LLDP != nil {
		inv.LLDP = s.LLDP(ctx)
	}
	return inv
}

package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metal-iaas/metal/internal/jobs"
	"github.com/metal-iaas/metal/internal/swarm"
	"github.com/metal-iaas/metal/pkg/agentapi"
)

// swarmConfig wires peer-to-peer chunk sharing (--peers, with chunks):
// the tracker and what each provision's agent is told.
func swarmConfig(cfg Config, reg prometheus.Registerer) *jobs.SwarmConfig {
	if !cfg.Peers || !cfg.ImageChunks {
		return nil
	}
	tr := swarm.New(swarm.Config{SeedSlots: cfg.SeedSlots, PeerSlots: cfg.PeerConns}, nil)
	reg.MustRegister(tr.Collector())
	return &jobs.SwarmConfig{Tracker: tr,
		Agent: agentapi.Swarm{Port: cfg.PeerPort, UploadBytesPerSec: cfg.PeerUploadRate, MaxConns: cfg.PeerConns}}
}

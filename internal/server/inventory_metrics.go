package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metal-iaas/metal/pkg/inventory"
)

// StateCounter is what the machines-by-state gauge needs from the
// inventory.
type StateCounter interface {
	CountMachinesByState(ctx context.Context) (map[inventory.State]int, error)
}

// machineStates is a collector that counts machines by state at scrape
// time, so the gauge can never drift from the database.
type machineStates struct {
	src  StateCounter
	desc *prometheus.Desc
}

// NewMachineStateCollector exposes metald_machines{state=...}.
func NewMachineStateCollector(src StateCounter) prometheus.Collector {
	return &machineStates{src: src, desc: prometheus.NewDesc("metald_machines",
		"Machines in the inventory by lifecycle state.", []string{"state"}, nil)}
}

func (m *machineStates) Describe(ch chan<- *prometheus.Desc) { ch <- m.desc }

func (m *machineStates) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := m.src.CountMachinesByState(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(m.desc, err)
		return
	}
	for _, st := range inventory.States {
		ch <- prometheus.MustNewConstMetric(m.desc, prometheus.GaugeValue, float64(counts[st]), string(st))
	}
}

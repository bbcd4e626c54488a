package api

import (
	"time"

	"github.com/metal-iaas/metal/pkg/inventory"
)

// The wire fixtures: inventory records with every field set, and with as
// few as the store allows, whose JSON as /api/v1 serves it is recorded in
// testdata/wire/*.golden (recorded before the wire types moved to
// pkg/metalapi, so that the move changes no byte).

var wireTime = time.Date(2026, 12, 6, 14, 30, 5, 123456789, time.UTC)

func wireMachines() []inventory.Machine {
	return []inventory.Machine{{
		Name: "rack1-07", MACs: []string{"52:54:00:aa:00:07", "52:54:00:aa:01:07"},
		UUID: "4c4c4544-0042-3510-8051-b4c04f4e3232", Serial: "SN123", IP: "10.0.0.7",
		Tags: map[string]string{"rack": "r1", "role": "worker"}, State: inventory.StateFailed,
		StateReason: "provision failed: disk too small", BMC: "ipmi://admin:xxxxx@10.1.0.7",
		PowerState: "on", PowerCheckedAt: wireTime.Add(time.Minute),
		Hardware:  []byte(`{"cpus":[{"model":"Xeon","cores":8}],"memory_bytes":34359738368,"disks":[{"name":"sda","size_bytes":480103981056}]}`),
		CreatedAt: wireTime, UpdatedAt: wireTime.Add(time.Hour),
	}, {
		Name: "m2", MACs: []string{"02:00:00:00:00:02"}, State: inventory.StateNew,
		CreatedAt: wireTime, UpdatedAt: wireTime,
	}, {
		Name: "m3", State: inventory.StateDiscovered, PowerState: "unknown",
	}}
}

func wireEvents() []inventory.Event {
	return []inventory.Event{{
		ID: 42, Time: wireTime, Machine: "rack1-07", MAC: "52:54:00:aa:00:07", Type: "machine.state",
		Message: "new → ready", Data: map[string]any{"from": "new", "to": "ready", "job": 7.0, "list": []any{"a", 1.5}, "nested": map[string]any{"k": true}},
	}, {
		ID: 43, Time: wireTime, Type: "dhcp.discover", MAC: "02:00:00:00:00:09",
	}, {}}
}

func wireLeases() []inventory.Lease {
	return []inventory.Lease{{
		MAC: "52:54:00:aa:00:07", IP: "10.0.0.7", Hostname: "rack1-07", State: "bound",
		ExpiresAt: wireTime.Add(12 * time.Hour), UpdatedAt: wireTime,
	}, {MAC: "02:00:00:00:00:02", IP: "10.0.0.50", State: "offered"}, {}}
}

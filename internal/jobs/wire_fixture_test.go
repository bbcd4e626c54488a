package jobs

import (
	"encoding/json"
	"time"

	"github.com/metal-iaas/metal/pkg/inventory"
)

// The wire fixtures: jobs with every field set and with few, whose JSON
// as /api/v1 serves it is recorded in testdata/wire/*.golden (recorded
// before the wire types moved to pkg/metalapi, so that the move changes
// no byte).

var wireTime = time.Date(2026, 12, 6, 14, 30, 5, 123456789, time.UTC)

func wireJobs() []inventory.Job {
	return []inventory.Job{{
		ID: 7, Machine: "rack1-07", Kind: inventory.JobProvision, State: inventory.JobFailed, Phase: PhaseWriting,
		Params:   json.RawMessage(`{"image":"debian-12","image_url":"http://10.0.0.1:8080/images/debian-12","raw_sha256":"ab12","virtual_size":2147483648,"root_device_hints":{"name":"/dev/sda","min_size_bytes":1000},"has_bmc":true,"user_data":"#cloud-config\n","ssh_keys":["ssh-ed25519 AAAA x@y"],"hostname":"web1","config_drive":"nocloud"}`),
		Progress: json.RawMessage(`{"version":1,"task_id":"t-7","phase":"writing","bytes_read":10,"bytes_written":20,"total":40,"rate_bytes_per_sec":1.5,"eta_seconds":-1,"log":["a <b> & c"],"time":"2026-12-06T14:30:05Z"}`),
		Error:    "write: disk too small", Deadline: wireTime.Add(time.Hour),
		CreatedAt: wireTime, UpdatedAt: wireTime.Add(time.Minute), FinishedAt: wireTime.Add(2 * time.Minute),
		AgentAddr: "10.0.0.7",
	}, {
		ID: 8, Machine: "m2", Kind: inventory.JobInspect, State: inventory.JobRunning, Phase: PhasePower,
		Params: json.RawMessage(`{"has_bmc":false}`), CreatedAt: wireTime, UpdatedAt: wireTime,
	}, {}}
}

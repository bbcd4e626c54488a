package jobs

import (
	"github.com/metal-iaas/metal/internal/metadata"
	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

// The job API's edge: requests come in as pkg/metalapi types and jobs go
// out as them; the service works on its own and the inventory's types.

// fromProvisionRequest is the service's request for a wire request.
func fromProvisionRequest(req metalapi.ProvisionRequest) ProvisionRequest {
	out := ProvisionRequest{
		Image: req.Image,
		Delta: req.Delta,
		CloudInit: metadata.CloudInit{
			UserData: req.UserData, SSHKeys: req.SSHKeys, Hostname: req.Hostname,
			ConfigDrive: agentapi.ConfigDriveFormat(req.ConfigDrive),
		},
	}
	if h := req.Hints; h != nil {
		out.Hints = &agentapi.RootDeviceHints{Serial: h.Serial, WWN: h.WWN, Name: h.Name, MinSizeBytes: h.MinSizeBytes}
	}
	return out
}

// toJob is a job as the API shows it; params and progress go out as
// stored (they are JSON already: metalapi.JobParams, metalapi.JobProgress).
func toJob(j inventory.Job) metalapi.Job {
	return metalapi.Job{
		ID: j.ID, Machine: j.Machine, Kind: j.Kind, State: j.State, Phase: j.Phase,
		Params: j.Params, Progress: j.Progress, Error: j.Error, Deadline: j.Deadline,
		CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt, FinishedAt: j.FinishedAt, AgentAddr: j.AgentAddr,
	}
}

func toJobs(js []inventory.Job) []metalapi.Job {
	if js == nil {
		return nil
	}
	out := make([]metalapi.Job, len(js))
	for i, j := range js {
		out[i] = toJob(j)
	}
	return out
}

package power

import "github.com/metal-iaas/metal/pkg/metalapi"

// The power API's edge: selectors come in and results go out as
// pkg/metalapi types.

func fromSelector(s metalapi.Selector) Selector {
	return Selector{Machines: s.Machines, Tags: s.Tags, All: s.All}
}

func toResult(r Result) metalapi.PowerResult {
	return metalapi.PowerResult{Machine: r.Machine, Action: r.Action, OK: r.OK, PowerState: r.PowerState,
		Error: r.Error, Attempts: r.Attempts, ElapsedMS: r.ElapsedMS}
}

func toResults(rs []Result) []metalapi.PowerResult {
	if rs == nil {
		return nil
	}
	out := make([]metalapi.PowerResult, len(rs))
	for i, r := range rs {
		out[i] = toResult(r)
	}
	return out
}

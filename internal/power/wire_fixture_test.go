package power

// The wire fixtures: results whose JSON as /api/v1 serves it is recorded
// in testdata/wire/*.golden (recorded before the wire types moved to
// pkg/metalapi, so that the move changes no byte).

func wireResults() []Result {
	return []Result{
		{Machine: "rack1-07", Action: "cycle", OK: true, PowerState: "on", Attempts: 2, ElapsedMS: 1500},
		{Machine: "m2", Action: "status", PowerState: "unknown", Error: "bmc: timeout <10s>"},
		{},
	}
}

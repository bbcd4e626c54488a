package jobs

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/metalapi"
	"github.com/metal-iaas/metal/test/wiretest"
)

// TestWireUnchanged: jobs as /api/v1 shows them are byte for byte what
// metald served before its wire types moved to pkg/metalapi
// (testdata/wire, recorded from inventory.Job's own tags).
func TestWireUnchanged(t *testing.T) {
	wiretest.CheckList(t, "job", wireJobs(), toJob, toJobs)
}

// strictly decodes b into v as api.Decode does: unknown fields refused.
func strictly(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%T: %v", v, err)
	}
}

// TestProvisionRequestDecodesAsBefore: a body that the service's own
// ProvisionRequest took, every field set, is taken by
// metalapi.ProvisionRequest and converts to the same request.
func TestProvisionRequestDecodesAsBefore(t *testing.T) {
	body := []byte(`{"image":"debian-12","root_device_hints":{"serial":"S1","wwn":"0x5000","name":"/dev/sda","min_size_bytes":1000},
		"user_data":"#cloud-config\n","ssh_keys":["ssh-ed25519 AAAA x@y"],"hostname":"web1","config_drive":"configdrive"}`)
	var before ProvisionRequest
	strictly(t, body, &before)
	var wire metalapi.ProvisionRequest
	strictly(t, body, &wire)
	if got := fromProvisionRequest(wire); !reflect.DeepEqual(got, before) {
		t.Fatalf("converted %+v, want %+v", got, before)
	}
	if got := fromProvisionRequest(metalapi.ProvisionRequest{Image: "x"}); got.Hints != nil || got.Image != "x" {
		t.Fatalf("no hints: %+v", got)
	}
	// Every field the service takes, filled in, goes through the wire
	// type and its conversion unchanged.
	var all ProvisionRequest
	wiretest.Fill(&all)
	b, err := json.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	wire = metalapi.ProvisionRequest{}
	strictly(t, b, &wire)
	if got := fromProvisionRequest(wire); !reflect.DeepEqual(got, all) {
		t.Fatalf("every field: converted %+v, want %+v", got, all)
	}
}

// TestJobParamsAndProgressMatch: what the API documents as the content of
// a job's params and progress (metalapi.JobParams, JobProgress) has every
// field of what metald stores there (Params, the agent's Progress): each
// filled in, the JSON decodes strictly into the wire type and back to the
// same bytes.
func TestJobParamsAndProgressMatch(t *testing.T) {
	var p Params
	wiretest.Fill(&p)
	roundTrip(t, p, &metalapi.JobParams{})
	var pr agentapi.Progress
	wiretest.Fill(&pr)
	roundTrip(t, pr, &metalapi.JobProgress{})
}

// roundTrip checks that from's JSON decodes strictly into to and encodes
// back to the same bytes.
func roundTrip(t *testing.T, from, to any) {
	t.Helper()
	b, err := json.Marshal(from)
	if err != nil {
		t.Fatal(err)
	}
	strictly(t, b, to)
	back, err := json.Marshal(to)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, b) {
		t.Fatalf("%T → %T:\n%s\n%s", from, to, b, back)
	}
}

// TestConfigDriveFormatsAgree: metalctl checks --config-drive with
// metalapi.ParseConfigDrive, the agent with agentapi's: they take the same
// names.
func TestConfigDriveFormatsAgree(t *testing.T) {
	for _, in := range []string{"", "nocloud", " NoCloud", "configdrive", "CONFIGDRIVE", "none", "iso9660", "config-2"} {
		a, aerr := agentapi.ParseConfigDriveFormat(in)
		m, merr := metalapi.ParseConfigDrive(in)
		if string(a) != m || (aerr == nil) != (merr == nil) {
			t.Errorf("%q: agentapi %q (%v), metalapi %q (%v)", in, a, aerr, m, merr)
		}
	}
}

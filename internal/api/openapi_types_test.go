package api_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/internal/api"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

// The wire type of each schema of openapi.json: the named schemas, and
// the inline ones by "method path request|response".
var (
	schemaTypes = map[string]any{
		"Error":          metalapi.Error{},
		"Machine":        metalapi.Machine{},
		"MachineCreate":  metalapi.MachineCreate{},
		"MachinePatch":   metalapi.MachinePatch{},
		"Event":          metalapi.Event{},
		"Lease":          metalapi.Lease{},
		"Image":          metalapi.Image{},
		"ImageImport":    metalapi.ImageImport{},
		"ImportProgress": metalapi.ImportProgress{},
		"ImageExport":    metalapi.ImageExport{},
		"ImageExported":  metalapi.ImageExported{},
		"PowerResult":    metalapi.PowerResult{},
		"Job":            metalapi.Job{},
	}
	inlineTypes = map[string]any{
		"post /power request":                       metalapi.PowerRequest{},
		"post /bootdev request":                     metalapi.BootRequest{},
		"post /machines/{name}/provision request":   metalapi.ProvisionRequest{},
		"post /machines/{name}/verify-bmc response": metalapi.VerifyResult{},
	}
)

type schema struct {
	Ref        string             `json:"$ref"`
	Type       string             `json:"type"`
	Properties map[string]*schema `json:"properties"`
	Items      *schema            `json:"items"`
	Enum       []string           `json:"enum"`
}

type operation struct {
	RequestBody struct {
		Content map[string]struct{ Schema *schema } `json:"content"`
	} `json:"requestBody"`
	Responses map[string]struct {
		Content map[string]struct{ Schema *schema } `json:"content"`
	} `json:"responses"`
}

func loadDoc(t *testing.T) (map[string]map[string]json.RawMessage, map[string]*schema) {
	t.Helper()
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]*schema `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Paths, doc.Components.Schemas
}

// TestOpenAPIMatchesWireTypes keeps openapi.json and pkg/metalapi one
// contract: every property of every object schema (named or inline, nested
// objects included) is a JSON field of its metalapi type, and every JSON
// field of the type is a property; every JSON body an operation takes or
// answers has its type here.
func TestOpenAPIMatchesWireTypes(t *testing.T) {
	paths, schemas := loadDoc(t)
	for name, s := range schemas {
		if s.Type != "object" {
			continue
		}
		typ, ok := schemaTypes[name]
		if !ok {
			t.Errorf("schema %s has no metalapi type in schemaTypes", name)
			continue
		}
		compare(t, "schema "+name, s, reflect.TypeOf(typ))
	}
	for name := range schemaTypes {
		if schemas[name] == nil {
			t.Errorf("schemaTypes names %s, which openapi.json does not define", name)
		}
	}
	seen := map[string]bool{}
	for p, ops := range paths {
		for method, raw := range ops {
			if method == "parameters" {
				continue
			}
			var op operation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, p, err)
			}
			check := func(side string, s *schema) {
				for s != nil && s.Items != nil {
					s = s.Items
				}
				if s == nil || s.Ref != "" || s.Type != "object" {
					return // named schemas are checked above
				}
				key := method + " " + p + " " + side
				seen[key] = true
				typ, ok := inlineTypes[key]
				if !ok {
					t.Errorf("%s: inline schema with no metalapi type in inlineTypes", key)
					return
				}
				compare(t, key, s, reflect.TypeOf(typ))
			}
			if c, ok := op.RequestBody.Content["application/json"]; ok {
				check("request", c.Schema)
			}
			for status, r := range op.Responses {
				if c, ok := r.Content["application/json"]; ok && strings.HasPrefix(status, "2") {
					check("response", c.Schema)
				}
			}
		}
	}
	for key := range inlineTypes {
		if !seen[key] {
			t.Errorf("inlineTypes names %s, which openapi.json does not have", key)
		}
	}
}

// compare checks an object schema's properties against t's JSON fields,
// descending into nested objects.
func compare(t *testing.T, where string, s *schema, typ reflect.Type) {
	t.Helper()
	fields := jsonFields(typ)
	for name, ps := range s.Properties {
		ft, ok := fields[name]
		if !ok {
			t.Errorf("%s: property %q is no JSON field of %s", where, name, typ)
			continue
		}
		if len(ps.Properties) > 0 {
			compare(t, where+"."+name, ps, elem(ft))
		}
	}
	for name := range fields {
		if _, ok := s.Properties[name]; !ok {
			t.Errorf("%s: %s's JSON field %q is not in openapi.json", where, typ, name)
		}
	}
}

func elem(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	return t
}

// jsonFields is what encoding/json makes of a struct: field names by tag
// (or Go name), embedded structs without a name flattened.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		if f.Anonymous && tag == "" && elem(f.Type).Kind() == reflect.Struct {
			for k, v := range jsonFields(elem(f.Type)) {
				out[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		out[tag] = f.Type
	}
	return out
}

// TestOpenAPIEnumsMatchWireConstants: the values openapi.json lists are
// those pkg/metalapi names.
func TestOpenAPIEnumsMatchWireConstants(t *testing.T) {
	paths, schemas := loadDoc(t)
	var states []string
	for _, s := range metalapi.States {
		states = append(states, string(s))
	}
	body := func(p string) *schema {
		var op operation
		if err := json.Unmarshal(paths[p]["post"], &op); err != nil {
			t.Fatal(err)
		}
		return op.RequestBody.Content["application/json"].Schema
	}
	for _, c := range []struct {
		where string
		enum  []string
		want  []string
	}{
		{"Error.code", schemas["Error"].Properties["code"].Enum, metalapi.Codes},
		{"State", schemas["State"].Enum, states},
		{"Job.kind", schemas["Job"].Properties["kind"].Enum, []string{metalapi.JobProvision, metalapi.JobInspect, metalapi.JobDeprovision}},
		{"Job.state", schemas["Job"].Properties["state"].Enum, []string{metalapi.JobRunning, metalapi.JobSucceeded, metalapi.JobFailed}},
		{"Job.phase", schemas["Job"].Properties["phase"].Enum, []string{metalapi.PhasePower, metalapi.PhaseBooting, metalapi.PhaseWriting,
			metalapi.PhaseInspecting, metalapi.PhaseWiping, metalapi.PhaseFinishing}},
		{"power action", body("/power").Properties["action"].Enum, metalapi.PowerActions},
		{"bootdev device", body("/bootdev").Properties["device"].Enum, metalapi.BootDevices},
		{"config drive", body("/machines/{name}/provision").Properties["config_drive"].Enum,
			[]string{metalapi.ConfigDriveNoCloud, metalapi.ConfigDriveOpenStack, metalapi.ConfigDriveNone}},
	} {
		got, want := slices.Clone(c.enum), slices.Clone(c.want)
		sort.Strings(got)
		sort.Strings(want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: openapi.json lists %v, metalapi %v", c.where, c.enum, c.want)
		}
	}
}

// TestOpenAPIHasWirePaths: every path pkg/metalapi names is documented.
func TestOpenAPIHasWirePaths(t *testing.T) {
	paths, _ := loadDoc(t)
	for _, p := range []string{
		metalapi.PathOpenAPI, metalapi.PathMachines, metalapi.PathEvents, metalapi.PathLeases, metalapi.PathImages,
		metalapi.PathJobs, metalapi.PathPower, metalapi.PathBootDev,
		metalapi.PathMachines + "/{name}", metalapi.PathImages + "/{name}", metalapi.PathJobs + "/{id}",
		metalapi.PathMachines + "/{name}/" + metalapi.ActionProvision,
		metalapi.PathMachines + "/{name}/" + metalapi.ActionInspect,
		metalapi.PathMachines + "/{name}/" + metalapi.ActionDeprovision,
		metalapi.PathMachines + "/{name}/" + metalapi.ActionVerifyBMC,
		metalapi.PathImages + "/{name}/" + metalapi.ActionImport,
		metalapi.PathImages + "/{name}/" + metalapi.ActionExport,
	} {
		rel, ok := strings.CutPrefix(p, metalapi.PathPrefix)
		if !ok || paths[rel] == nil {
			t.Errorf("%s is not in openapi.json", p)
		}
	}
}

// The checks above must see real fields: a sanity check of jsonFields.
func TestJSONFieldsFlattensEmbedded(t *testing.T) {
	got := jsonFields(reflect.TypeOf(metalapi.PowerRequest{}))
	if len(got) != 4 || got["machines"] == nil || got["action"] == nil {
		t.Fatalf("PowerRequest fields %v", got)
	}
	if f := jsonFields(reflect.TypeOf(metalapi.Machine{})); f["power_checked_at"] != reflect.TypeOf(time.Time{}) {
		t.Fatalf("Machine fields %v", f)
	}
}

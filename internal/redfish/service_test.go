package redfish

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func do(t *testing.T, method, url, body string, hdr map[string]string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
		if v == "" {
			req.Header.Del(k)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: body not JSON: %q", method, url, b)
		}
	}
	return resp, m
}

func basic(u, p string) map[string]string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(u, p)
	return map[string]string{"Authorization": req.Header.Get("Authorization")}
}

func messageID(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	infos, _ := e["@Message.ExtendedInfo"].([]any)
	if len(infos) == 0 || e["code"] != msgGeneralError || e["message"] == "" {
		return ""
	}
	info, _ := infos[0].(map[string]any)
	id, _ := info["MessageId"].(string)
	return id
}

func TestStatusCodes(t *testing.T) {
	ctl := &recController{failFor: "node 2"}
	srv := serve(t, testSystems(), ctl, staticAuth{user: "admin", pass: "pw", token: "api-token"})
	u := srv.URL + v1
	auth := basic("admin", "pw")
	tests := []struct {
		name, method, path, body string
		hdr                      map[string]string
		code                     int
		msgID                    string
	}{
		{"root is public", "GET", "/", "", nil, 200, ""},
		{"root without slash", "GET", "", "", nil, 200, ""},
		{"systems need auth", "GET", "/Systems", "", nil, 401, msgNoValidSession},
		{"wrong password", "GET", "/Systems", "", basic("admin", "nope"), 401, msgNoValidSession},
		{"api token as X-Auth-Token", "GET", "/Systems", "", map[string]string{"X-Auth-Token": "api-token"}, 200, ""},
		{"bad token", "GET", "/Systems", "", map[string]string{"X-Auth-Token": "bogus"}, 401, msgNoValidSession},
		{"api token as bearer", "GET", "/Systems", "", map[string]string{"Authorization": "Bearer api-token"}, 200, ""},
		{"bad bearer", "GET", "/Systems", "", map[string]string{"Authorization": "Bearer nope"}, 401, msgNoValidSession},
		{"system", "GET", "/Systems/rack1-07", "", auth, 200, ""},
		{"escaped name", "GET", "/Systems/node%202", "", auth, 200, ""},
		{"unknown system", "GET", "/Systems/nope", "", auth, 404, msgResourceNotFound},
		{"unknown path", "GET", "/Chassis", "", auth, 404, msgResourceMissingAtURI},
		{"unknown path no auth", "GET", "/Foo/bar", "", nil, 404, msgResourceMissingAtURI},
		{"method not allowed", "DELETE", "/Systems/rack1-07", "", auth, 405, msgOperationNotAllowed},
		{"post to collection", "POST", "/Systems", "{}", auth, 405, msgOperationNotAllowed},
		{"nics", "GET", "/Systems/rack1-07/EthernetInterfaces", "", auth, 200, ""},
		{"nic", "GET", "/Systems/rack1-07/EthernetInterfaces/2", "", auth, 200, ""},
		{"nic out of range", "GET", "/Systems/rack1-07/EthernetInterfaces/3", "", auth, 404, msgResourceMissingAtURI},
		{"nic leading zero", "GET", "/Systems/rack1-07/EthernetInterfaces/01", "", auth, 404, msgResourceMissingAtURI},
		{"reset ok", "POST", "/Systems/rack1-07/Actions/ComputerSystem.Reset", `{"ResetType":"ForceOff"}`, auth, 204, ""},
		{"reset unsupported type", "POST", "/Systems/rack1-07/Actions/ComputerSystem.Reset", `{"ResetType":"Nmi"}`, auth, 400, msgActionParamNotSupp},
		{"reset wrong type", "POST", "/Systems/rack1-07/Actions/ComputerSystem.Reset", `{"ResetType":7}`, auth, 400, msgActionParamNotSupp},
		{"reset missing type", "POST", "/Systems/rack1-07/Actions/ComputerSystem.Reset", `{}`, auth, 400, msgActionParamMissing},
		{"reset bad json", "POST", "/Systems/rack1-07/Actions/ComputerSystem.Reset", `{"ResetType":`, auth, 400, msgMalformedJSON},
		{"reset not an object", "POST", "/Systems/rack1-07/Actions/ComputerSystem.Reset", `[1]`, auth, 400, msgMalformedJSON},
		{"reset extra param", "POST", "/Systems/rack1-07/Actions/ComputerSystem.Reset", `{"ResetType":"On","X":1}`, auth, 400, msgActionParamNotSupp},
		{"reset unknown system", "POST", "/Systems/nope/Actions/ComputerSystem.Reset", `{"ResetType":"On"}`, auth, 404, msgResourceNotFound},
		{"reset bmc failure", "POST", "/Systems/node%202/Actions/ComputerSystem.Reset", `{"ResetType":"On"}`, auth, 500, msgInternalError},
		{"reset needs auth", "POST", "/Systems/rack1-07/Actions/ComputerSystem.Reset", `{"ResetType":"On"}`, nil, 401, msgNoValidSession},
		{"patch boot", "PATCH", "/Systems/rack1-07", `{"Boot":{"BootSourceOverrideTarget":"Hdd","BootSourceOverrideEnabled":"Continuous"}}`, auth, 204, ""},
		{"patch bad target", "PATCH", "/Systems/rack1-07", `{"Boot":{"BootSourceOverrideTarget":"Floppy"}}`, auth, 400, msgPropertyValueNotInList},
		{"patch bad enabled type", "PATCH", "/Systems/rack1-07", `{"Boot":{"BootSourceOverrideEnabled":true}}`, auth, 400, msgPropertyValueType},
		{"patch unknown prop", "PATCH", "/Systems/rack1-07", `{"AssetTag":"x"}`, auth, 400, msgPropertyUnknown},
		{"patch unknown boot prop", "PATCH", "/Systems/rack1-07", `{"Boot":{"BootNext":"x"}}`, auth, 400, msgPropertyUnknown},
		{"patch no boot", "PATCH", "/Systems/rack1-07", `{}`, auth, 400, msgGeneralError},
		{"patch malformed", "PATCH", "/Systems/rack1-07", `nope`, auth, 400, msgMalformedJSON},
		{"login wrong password", "POST", "/SessionService/Sessions", `{"UserName":"admin","Password":"x"}`, nil, 401, msgNoValidSession},
		{"login missing fields", "POST", "/SessionService/Sessions", `{"UserName":"admin"}`, nil, 400, msgActionParamMissing},
		{"sessions list needs auth", "GET", "/SessionService/Sessions", "", nil, 401, msgNoValidSession},
		{"delete unknown session", "DELETE", "/SessionService/Sessions/99", "", auth, 404, msgResourceNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, m := do(t, tt.method, u+tt.path, tt.body, tt.hdr)
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d, want %d (%v)", resp.StatusCode, tt.code, m)
			}
			if tt.msgID != "" && messageID(m) != tt.msgID {
				t.Fatalf("MessageId %q, want %q (%v)", messageID(m), tt.msgID, m)
			}
			if tt.code == 405 && resp.Header.Get("Allow") == "" {
				t.Fatal("405 without Allow header")
			}
		})
	}
	if got := strings.Join(ctl.resets, ","); got != "rack1-07:ForceOff" {
		t.Errorf("resets = %s", got)
	}
	if len(ctl.boots) != 1 || ctl.boots[0] != (BootOverride{"Hdd", "Continuous", "UEFI"}) {
		t.Errorf("boots = %+v (unspecified Mode must keep the current one)", ctl.boots)
	}
}

func TestSessionLifecycle(t *testing.T) {
	srv := serve(t, testSystems(), &recController{}, staticAuth{user: "admin", pass: "pw"})
	u := srv.URL + v1
	resp, m := do(t, "POST", u+"/SessionService/Sessions", `{"UserName":"admin","Password":"pw"}`, nil)
	tok, loc := resp.Header.Get("X-Auth-Token"), resp.Header.Get("Location")
	if resp.StatusCode != 201 || tok == "" || !strings.HasPrefix(loc, v1+"/SessionService/Sessions/") || m["UserName"] != "admin" {
		t.Fatalf("login: %d token %q location %q %v", resp.StatusCode, tok, loc, m)
	}
	hdr := map[string]string{"X-Auth-Token": tok}
	if resp, _ := do(t, "GET", u+"/Systems", "", hdr); resp.StatusCode != 200 {
		t.Fatalf("with token: %d", resp.StatusCode)
	}
	if _, m := do(t, "GET", u+"/SessionService/Sessions", "", hdr); m["Members@odata.count"] != 1.0 {
		t.Fatalf("sessions: %v", m)
	}
	if resp, _ := do(t, "DELETE", srv.URL+loc, "", hdr); resp.StatusCode != 204 {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", u+"/Systems", "", hdr); resp.StatusCode != 401 {
		t.Fatalf("token still valid after logout: %d", resp.StatusCode)
	}
}

func TestGolden(t *testing.T) {
	srv := serve(t, testSystems(), &recController{}, staticAuth{user: "admin", pass: "pw"})
	for name, path := range map[string]string{
		"root":    "/",
		"systems": "/Systems",
		"system":  "/Systems/rack1-07",
		"nic":     "/Systems/rack1-07/EthernetInterfaces/1",
		"error":   "/Systems/missing",
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+v1+path, nil)
			req.SetBasicAuth("admin", "pw")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var buf bytes.Buffer
			if err := json.Indent(&buf, raw, "", "  "); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join("testdata", name+".golden.json")
			if *update {
				_ = os.MkdirAll("testdata", 0o755)
				if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Fatalf("%s differs from %s:\n%s", path, file, buf.String())
			}
		})
	}
}

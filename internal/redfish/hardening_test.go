package redfish

import (
	"strings"
	"sync"
	"testing"
)

// TestWritesNeedJSON: a POST or PATCH whose body is not declared
// application/json (what a cross-site form sends: text/plain,
// application/x-www-form-urlencoded, multipart/form-data) is refused with
// 415 and a Redfish error body, and nothing happens to the machine.
func TestWritesNeedJSON(t *testing.T) {
	ctl := &recController{}
	srv := serve(t, testSystems(), ctl, staticAuth{user: "admin", pass: "pw"})
	u := srv.URL + v1
	reset := u + "/Systems/rack1-07/Actions/ComputerSystem.Reset"
	tests := []struct {
		name, method, url, body, ctype string
		code                           int
	}{
		{"reset text/plain", "POST", reset, `{"ResetType":"ForceOff"}`, "text/plain", 415},
		{"reset text/plain charset", "POST", reset, `{"ResetType":"ForceOff"}`, "text/plain;charset=UTF-8", 415},
		{"reset form", "POST", reset, `ResetType=ForceOff`, "application/x-www-form-urlencoded", 415},
		{"reset multipart", "POST", reset, `--x--`, "multipart/form-data; boundary=x", 415},
		{"reset no content type", "POST", reset, `{"ResetType":"ForceOff"}`, "", 415},
		{"reset json lookalike", "POST", reset, `{"ResetType":"ForceOff"}`, "application/jsonx", 415},
		{"patch text/plain", "PATCH", u + "/Systems/rack1-07", `{"Boot":{"BootSourceOverrideTarget":"Pxe"}}`, "text/plain", 415},
		{"login text/plain", "POST", u + "/SessionService/Sessions", `{"UserName":"admin","Password":"pw"}`, "text/plain", 415},
		{"reset json", "POST", reset, `{"ResetType":"On"}`, "application/json", 204},
		{"reset json charset", "POST", reset, `{"ResetType":"On"}`, "application/json; charset=utf-8", 204},
		{"reset JSON upper case", "POST", reset, `{"ResetType":"On"}`, "Application/JSON", 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := basic("admin", "pw")
			hdr["Content-Type"] = tt.ctype
			resp, m := do(t, tt.method, tt.url, tt.body, hdr)
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d, want %d (%v)", resp.StatusCode, tt.code, m)
			}
			if tt.code == 415 && messageID(m) != msgGeneralError {
				t.Fatalf("415 without a Redfish error body: %v", m)
			}
		})
	}
	if got := strings.Join(ctl.resets, ","); got != "rack1-07:On,rack1-07:On,rack1-07:On" {
		t.Fatalf("resets = %s: a refused request reached the controller", got)
	}
	if len(ctl.boots) != 0 {
		t.Fatalf("boots = %+v", ctl.boots)
	}
}

// TestSessionDiesWithItsCredential: once the credential a session was
// created with is revoked, the session's X-Auth-Token stops working at
// once, even for a Reset, and the session disappears from the list; the
// sessions of other credentials live on.
func TestSessionDiesWithItsCredential(t *testing.T) {
	ctl := &recController{}
	revoked := &sync.Map{}
	srv := serve(t, testSystems(), ctl, staticAuth{user: "admin", pass: "pw", revoked: revoked})
	u := srv.URL + v1
	login := func() map[string]string {
		resp, m := do(t, "POST", u+"/SessionService/Sessions", `{"UserName":"admin","Password":"pw"}`, nil)
		if resp.StatusCode != 201 {
			t.Fatalf("login: %d %v", resp.StatusCode, m)
		}
		return map[string]string{"X-Auth-Token": resp.Header.Get("X-Auth-Token")}
	}
	s1, s2 := login(), login()
	if resp, _ := do(t, "POST", u+"/Systems/rack1-07/Actions/ComputerSystem.Reset", `{"ResetType":"On"}`, s1); resp.StatusCode != 204 {
		t.Fatalf("reset with a live session: %d", resp.StatusCode)
	}
	revoked.Store("user:admin", true)
	for _, tt := range []struct{ method, path, body string }{
		{"POST", "/Systems/rack1-07/Actions/ComputerSystem.Reset", `{"ResetType":"ForceOff"}`},
		{"GET", "/Systems", ""},
		{"GET", "/SessionService/Sessions", ""},
	} {
		for _, s := range []map[string]string{s1, s2} {
			resp, m := do(t, tt.method, u+tt.path, tt.body, s)
			if resp.StatusCode != 401 || messageID(m) != msgNoValidSession {
				t.Fatalf("%s %s with a revoked session: %d %v", tt.method, tt.path, resp.StatusCode, m)
			}
		}
	}
	if got := strings.Join(ctl.resets, ","); got != "rack1-07:On" {
		t.Fatalf("resets = %s", got)
	}
	if resp, _ := do(t, "POST", u+"/SessionService/Sessions", `{"UserName":"admin","Password":"pw"}`, nil); resp.StatusCode != 401 {
		t.Fatalf("login with a revoked credential: %d", resp.StatusCode)
	}
}

package itest

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/test/bmcsim"
)

// TestRedfishTrust against the real binary: a Redfish session dies the
// moment the API token it was created with is revoked (`metald token
// revoke` while metald runs), and a Reset posted as text/plain (what a
// cross-site form sends) is refused with 415; neither reaches the BMC.
func TestRedfishTrust(t *testing.T) {
	bmc := bmcsim.NewBMC(bmcsim.Config{User: "root", Password: "rfPw"}).Start(false)
	defer bmc.Close()
	m := StartMetald(t, "", "--bmc-timeout", "10s")
	wantOK(t, m.Ctl("machine", "add", "rf1", "--mac", "52:54:00:ee:00:01", "--bmc", bmc.BMCURL(), "--no-verify"), "add")
	reset := m.URL + "/redfish/v1/Systems/rf1/Actions/ComputerSystem.Reset"
	client := &http.Client{Timeout: 30 * time.Second}
	call := func(method, url, body, ctype string, auth func(*http.Request)) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		auth(req)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	basic := func(req *http.Request) { req.SetBasicAuth("operator", m.Token) }

	// A second token, made while metald runs, logs a session in.
	secret := NewToken(t, m.DataDir)
	parts := strings.Split(secret, "_")
	if len(parts) != 3 {
		t.Fatalf("token %q: want metal_<id>_<secret>", secret)
	}
	resp := call("POST", m.URL+"/redfish/v1/SessionService/Sessions",
		`{"UserName":"ops","Password":"`+secret+`"}`, "application/json", func(*http.Request) {})
	session := resp.Header.Get("X-Auth-Token")
	if resp.StatusCode != http.StatusCreated || session == "" {
		t.Fatalf("login: %d, token %q", resp.StatusCode, session)
	}
	withSession := func(req *http.Request) { req.Header.Set("X-Auth-Token", session) }
	if resp := call("POST", reset, `{"ResetType":"On"}`, "application/json", withSession); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("reset On with the session: %d", resp.StatusCode)
	}
	if !bmc.Power() {
		t.Fatal("reset On did not reach the BMC")
	}
	resets := len(bmc.Resets())

	// A cross-site form post: text/plain, with credentials that work.
	for _, ctype := range []string{"text/plain", "application/x-www-form-urlencoded", ""} {
		if resp := call("POST", reset, `{"ResetType":"ForceOff"}`, ctype, basic); resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Fatalf("reset as %q: %d, want 415", ctype, resp.StatusCode)
		}
	}
	if !bmc.Power() || len(bmc.Resets()) != resets {
		t.Fatalf("a refused reset reached the BMC: power %v, resets %v", bmc.Power(), bmc.Resets())
	}

	// Revoke the session's token: the session is dead at once.
	out, err := exec.Command(filepath.Join(Binaries(t), "metald"), "token", "revoke", parts[1], "--data-dir", m.DataDir).CombinedOutput()
	if err != nil {
		t.Fatalf("metald token revoke: %v\n%s", err, out)
	}
	if resp := call("POST", reset, `{"ResetType":"ForceOff"}`, "application/json", withSession); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("reset with the revoked token's session: %d, want 401", resp.StatusCode)
	}
	if resp := call("GET", m.URL+"/redfish/v1/Systems", "", "", withSession); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("systems with the revoked token's session: %d, want 401", resp.StatusCode)
	}
	if !bmc.Power() || len(bmc.Resets()) != resets {
		t.Fatalf("the revoked session's reset reached the BMC: power %v, resets %v", bmc.Power(), bmc.Resets())
	}
	// The other token is untouched.
	if resp := call("POST", reset, `{"ResetType":"ForceOff"}`, "application/json", basic); resp.StatusCode != http.StatusNoContent || bmc.Power() {
		t.Fatalf("reset ForceOff with the live token: %d, power %v", resp.StatusCode, bmc.Power())
	}
}

package itest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/test/testenv"
)

// TestDashboardInChromium loads metald's dashboard in headless Chromium
// (the token passed as /#token=…) and checks that the page's JavaScript
// fetched and drew the machines, their states and the event stream.
func TestDashboardInChromium(t *testing.T) {
	chromium := testenv.Tool(t, "chromium", "chromium")
	m := StartMetald(t, "", "--power-poll", "0")
	wantOK(t, m.Ctl("machine", "add", "dash-01", "--mac", "52:54:00:da:00:01", "--tag", "rack=r9"), "add")
	wantOK(t, m.Ctl("machine", "add", "dash-02", "--mac", "52:54:00:da:00:02"), "add")
	wantOK(t, m.Ctl("machine", "edit", "dash-02", "--state", "maintenance", "--reason", "fan"), "edit")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	profile, err := os.MkdirTemp("", "metal-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(profile)
	out, err := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, "--virtual-time-budget=5000", "--dump-dom", m.URL+"/#token="+m.Token).Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := string(out)
	for _, want := range []string{
		`dash-01</td><td><span class="state new">new</span>`,
		`dash-02</td><td><span class="state maintenance">maintenance</span>`,
		"rack=r9",
		"machine.state new → maintenance: fan",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered dashboard lacks %q", want)
		}
	}
}

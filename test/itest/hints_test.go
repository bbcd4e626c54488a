package itest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIHints: metald's errors name no metalctl command; metalctl adds
// what to run next — for a provision the machine's state forbids and for
// a power action on a machine without a BMC.
func TestCLIHints(t *testing.T) {
	img := filepath.Join(t.TempDir(), "tiny.raw")
	if err := os.WriteFile(img, []byte(strings.Repeat("metal", 1<<18)), 0o644); err != nil {
		t.Fatal(err)
	}
	m := StartMetald(t, "")
	wantOK(t, m.Ctl("image", "upload", img, "--name", "tiny"), "upload")
	wantOK(t, m.Ctl("machine", "add", "h1", "--mac", "52:54:00:ee:00:01"), "add")

	r := m.Ctl("provision", "h1", "--image", "tiny")
	wantFail(t, r, "provision a new machine", "inspect it first")
	for _, line := range strings.Split(r.Stderr, "\n") {
		if strings.HasPrefix(line, "metalctl: h1:") && strings.Contains(line, "metalctl inspect") {
			t.Errorf("metald's error names a metalctl command: %q", line)
		}
	}
	if !strings.Contains(r.Stderr, "hint: inspect it first: metalctl inspect h1; or mark it ready: metalctl machine edit h1 --state ready") {
		t.Errorf("no provision hint:\n%s", r.Stderr)
	}

	r = m.Ctl("power", "on", "h1")
	wantFail(t, r, "power without a BMC", "hint: h1 has no BMC: metalctl machine edit h1 --bmc URL")
	if strings.Contains(r.Stdout, "metalctl") {
		t.Errorf("the power result names a metalctl command:\n%s", r.Stdout)
	}
}

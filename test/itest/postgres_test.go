package itest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/pkg/metalapi"
	"github.com/metal-iaas/metal/test/pgtest"
)

// startPostgres starts a throwaway PostgreSQL cluster (test/pgtest:
// unix socket only, no TCP listener at all), creates database "metal" and
// returns its URL. The cluster stops when the test ends.
func startPostgres(t *testing.T) string {
	t.Helper()
	url, err := pgtest.Require(t).CreateDatabase(context.Background(), "metal", "")
	if err != nil {
		t.Fatal(err)
	}
	return url
}

// TestTwoMetaldsShareOnePostgres runs two metald processes (two data
// dirs holding the same secret.key, two HTTP ports) on one PostgreSQL
// database: what one writes the other lists, tokens work on both, and
// `events --follow` on one sees events made through the other.
func TestTwoMetaldsShareOnePostgres(t *testing.T) {
	url := startPostgres(t)
	// METALD_DB reaches both `metald token create` (the harness makes each
	// metald's token with it) and `metald serve`.
	t.Setenv("METALD_DB", url)
	a := StartMetald(t, "", "--dhcp-mode", "off")
	if !strings.Contains(a.Log(), "db=postgres") {
		t.Fatalf("metald A does not say it runs on postgres:\n%s", a.Log())
	}
	dirB := sharedKeyDir(t, a)
	b := StartMetald(t, dirB, "--dhcp-mode", "off", "--bmc-timeout", "2s")

	// m1's BMC is a loopback UDP port nothing answers on.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bmcPort := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	wantOK(t, a.Ctl("machine", "add", "m1", "--mac", "52:54:00:aa:00:01", "--ip", "10.9.0.11",
		"--bmc", fmt.Sprintf("ipmi://admin:Pa55word@127.0.0.1:%d", bmcPort), "--no-verify", "--tag", "rack=r1"), "add m1 through A")
	r := b.Ctl("machine", "list", "-o", "json")
	wantOK(t, r, "list through B")
	var list []metalapi.Machine
	if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil {
		t.Fatalf("list -o json: %v\n%s", err, r.Stdout)
	}
	if len(list) != 1 || list[0].Name != "m1" || list[0].MACs[0] != "52:54:00:aa:00:01" {
		t.Fatalf("B lists %+v", list)
	}
	if strings.Contains(r.Stdout, "Pa55word") {
		t.Fatal("B shows the BMC password")
	}
	// Conflicts are detected across metalds, with the same message.
	wantFail(t, b.Ctl("machine", "add", "m2", "--mac", "52:54:00:AA:00:01"), "MAC taken through A", `already belongs to machine "m1"`)
	// A's token works on B: tokens live in the shared database.
	bWithA := *b
	bWithA.Token = a.Token
	wantOK(t, bWithA.Ctl("machine", "show", "m1"), "A's token on B")

	// B unseals the BMC password A sealed (same key): its power status
	// fails only at the (silent) BMC. A metald with another key cannot.
	r = b.Ctl("power", "status", "m1")
	if strings.Contains(r.Stdout+r.Stderr, "wrong secret.key") {
		t.Fatalf("B could not unseal A's BMC credentials:\n%s%s", r.Stdout, r.Stderr)
	}
	if strings.Contains(r.Stdout+r.Stderr, "no BMC configured") {
		t.Fatalf("B does not see m1's BMC:\n%s%s", r.Stdout, r.Stderr)
	}
	t.Logf("power status through B: %s%s", r.Stdout, r.Stderr)
	c := StartMetald(t, "", "--dhcp-mode", "off", "--bmc-timeout", "2s")
	r = c.Ctl("power", "status", "m1")
	if !strings.Contains(r.Stdout+r.Stderr, "wrong secret.key") {
		t.Fatalf("a metald with its own key should fail to unseal, got:\n%s%s", r.Stdout, r.Stderr)
	}
	c.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(Binaries(t), "metalctl"), "events", "--follow", "-o", "json",
		"--server", b.URL, "--token", b.Token)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()
	time.Sleep(300 * time.Millisecond) // let the stream open before the event
	began := time.Now()
	wantOK(t, a.Ctl("machine", "add", "follow1", "--mac", "52:54:00:bb:00:01"), "add follow1 through A")
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"machine.created"`) && strings.Contains(sc.Text(), "follow1") {
			t.Logf("B's follower saw A's event %v after the add began", time.Since(began).Round(time.Millisecond))
			return
		}
	}
	t.Fatalf("events --follow on B never showed follow1's machine.created made through A (%v)\nA:\n%s\nB:\n%s", sc.Err(), a.Log(), b.Log())
}

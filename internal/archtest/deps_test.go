package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientsLinkNoServer is a deptest: metalctl and metal-agent link no
// database, no gin, no BMC library and none of metald's services (go list
// -deps, tests excluded), and metalctl stays under MaxClientDeps packages.
func TestClientsLinkNoServer(t *testing.T) {
	for _, c := range Clients {
		out, err := exec.Command("go", "list", "-deps", Module+"/"+c).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", c, err, out)
		}
		deps := strings.Fields(string(out))
		t.Logf("%s links %d packages", c, len(deps))
		if len(deps) < 20 {
			t.Fatalf("%s: go list -deps found only %d packages: the check is not looking at it", c, len(deps))
		}
		for _, d := range ServerDeps(deps) {
			t.Errorf("%s links %s, which is the server's (import pkg/metalapi or pkg/agentapi instead)", c, d)
		}
		if c == "cmd/metalctl" && len(deps) > MaxClientDeps {
			t.Errorf("%s links %d packages, more than %d", c, len(deps), MaxClientDeps)
		}
	}
}

func TestServerDepsCatchesThem(t *testing.T) {
	deps := []string{"fmt", "modernc.org/sqlite/lib", "github.com/jackc/pgx/v5/stdlib", "github.com/gin-gonic/gin",
		"github.com/bmc-toolbox/bmclib/v2", "github.com/stmcginnis/gofish/redfish", Module + "/internal/api",
		Module + "/pkg/inventory", Module + "/pkg/metalapi", Module + "/internal/apiclient", "github.com/gin-gonic/ginx"}
	got := ServerDeps(deps)
	if len(got) != 7 {
		t.Fatalf("ServerDeps found %v, want the 7 server packages only", got)
	}
}

package archtest

import "strings"

// Clients are the programs that run away from metald, on an operator's
// machine or a netbooted server: they speak its wire packages
// (pkg/metalapi, pkg/agentapi) and must link none of the server.
var Clients = []string{"cmd/metalctl", "cmd/metal-agent"}

// ServerOnly lists what a client must not link: the databases, the HTTP
// framework, the BMC libraries and the registry client, and metald's own services and
// inventory. A module path covers its subpackages.
var ServerOnly = []string{
	"modernc.org/sqlite",
	"github.com/jackc/pgx",
	"github.com/gin-gonic/gin",
	"github.com/bmc-toolbox/bmclib",
	"github.com/stmcginnis/gofish",
	"github.com/google/go-containerregistry",
	"github.com/docker/cli",
	Module + "/internal/api",
	Module + "/internal/jobs",
	Module + "/internal/power",
	Module + "/internal/netboot",
	Module + "/internal/server",
	Module + "/internal/images",
	Module + "/internal/oci",
	Module + "/internal/metadata",
	Module + "/internal/redfish",
	Module + "/pkg/inventory",
	Module + "/pkg/bmc",
}

// MaxClientDeps bounds the packages (standard library included) metalctl
// links.
const MaxClientDeps = 300

// ServerDeps returns the packages of deps that ServerOnly forbids a
// client.
func ServerDeps(deps []string) []string {
	var bad []string
	for _, d := range deps {
		for _, s := range ServerOnly {
			if d == s || strings.HasPrefix(d, s+"/") {
				bad = append(bad, d)
				break
			}
		}
	}
	return bad
}

package inventory

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/metal-iaas/metal/test/pgtest"
)

// The PostgreSQL tests run against a real server: one throwaway cluster
// per test binary (test/pgtest: unix socket only, no TCP listener),
// one fresh database per test. TestMain stops it.

func TestMain(m *testing.M) {
	code := m.Run()
	pgShared.Stop()
	os.Exit(code)
}

var (
	pgShared pgtest.Shared
	pgDBs    atomic.Int64
)

// postgresURL returns the URL of a new, empty database on the shared
// test cluster, starting the cluster on first use.
func postgresURL(t testing.TB) string {
	t.Helper()
	c := pgShared.Cluster(t)
	// An ICU en-US database, as a site's would be: its collation sorts
	// "a_a" before "a-b" before "a0", unlike SQLite, so the tests prove the
	// schema's bytewise ordering. Servers built without ICU get a plain
	// database.
	url, err := c.CreateDatabase(context.Background(), fmt.Sprintf("inv_%d", pgDBs.Add(1)), "en-US")
	if err != nil {
		t.Fatal(err)
	}
	return url
}

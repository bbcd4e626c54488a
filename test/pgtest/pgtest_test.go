package pgtest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestClusterDatabases starts a cluster, creates a plain and an ICU
// database, and proves both URLs reach the database they name over the
// socket; after Stop the cluster's directory is gone.
func TestClusterDatabases(t *testing.T) {
	c := Require(t)
	ctx := context.Background()
	for _, tc := range []struct{ name, icu string }{{"plain_db", ""}, {"icu_db", "en-US"}} {
		url, err := c.CreateDatabase(ctx, tc.name, tc.icu)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatalf("%s: connect %s: %v", tc.name, url, err)
		}
		var got string
		err = conn.QueryRow(ctx, `SELECT current_database()`).Scan(&got)
		conn.Close(ctx)
		if err != nil || got != tc.name {
			t.Fatalf("%s: current_database() = %q, %v", tc.name, got, err)
		}
	}
	if _, err := c.CreateDatabase(ctx, "plain_db", ""); err == nil {
		t.Fatal("creating an existing database succeeded")
	}
	if _, err := os.Stat(filepath.Join(c.dir, "data", "postmaster.pid")); err != nil {
		t.Fatalf("server not running: %v", err)
	}
	c.Stop()
	if _, err := os.Stat(c.dir); !os.IsNotExist(err) {
		t.Fatalf("cluster dir %s still there after Stop: %v", c.dir, err)
	}
}

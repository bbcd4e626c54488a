// Package pgtest starts throwaway PostgreSQL clusters for tests: initdb
// into a temporary directory, trust authentication for the user "metal",
// a unix socket in that directory and no TCP listener at all. The server
// binaries come from the Debian package postgresql; a machine without
// them skips the test loudly, or fails it under METAL_REQUIRE_ALL=1
// (test/testenv). Only tests import this package.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/metal-iaas/metal/test/testenv"
)

// ErrMissing marks a machine that cannot run a cluster: no server
// binaries, or (as root) no postgres user to own the cluster.
var ErrMissing = errors.New("postgresql server binaries not found under /usr/lib/postgresql/*/bin: apt-get install postgresql")

// Cluster is one running throwaway PostgreSQL server.
type Cluster struct {
	bin  string // directory with initdb, pg_ctl
	dir  string // cluster root: data/, the socket, the log
	asPG bool   // run server tools as the postgres user (we are root)
}

// Start initialises and starts a cluster. The caller stops it with Stop.
// An error wrapping ErrMissing means the machine lacks PostgreSQL.
func Start() (*Cluster, error) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		return nil, ErrMissing
	}
	sort.Slice(bins, func(i, j int) bool { return major(bins[i]) < major(bins[j]) })
	c := &Cluster{bin: filepath.Dir(bins[len(bins)-1])}
	dir, err := os.MkdirTemp("", "metal-pg-") // short: the socket path must fit in 107 bytes
	if err != nil {
		return nil, err
	}
	c.dir = dir
	if err := c.start(); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start() error {
	if os.Geteuid() == 0 { // initdb refuses to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("%w (running as root needs the postgres user to own the cluster)", ErrMissing)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(c.dir, uid, gid); err != nil {
			return err
		}
		c.asPG = true
	}
	if err := os.Chmod(c.dir, 0o755); err != nil {
		return err
	}
	data := filepath.Join(c.dir, "data")
	if out, err := c.run("initdb", "-D", data, "-U", "metal", "--auth=trust",
		"-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		return fmt.Errorf("initdb: %v: %s", err, out)
	}
	opts := fmt.Sprintf("-k %s -p 5432 -c listen_addresses='' -c max_connections=200", c.dir)
	if out, err := c.run("pg_ctl", "-D", data, "-l", filepath.Join(c.dir, "log"),
		"-w", "-t", "60", "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		return fmt.Errorf("pg_ctl start: %v: %s\n%s", err, out, log)
	}
	return nil
}

func (c *Cluster) run(tool string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, tool)
	cmd := exec.Command(path, args...)
	if c.asPG {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}

// Stop stops the server (immediate mode) and removes the cluster.
func (c *Cluster) Stop() {
	if c == nil || c.dir == "" {
		return
	}
	if _, err := os.Stat(filepath.Join(c.dir, "data", "postmaster.pid")); err == nil {
		c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "stop")
	}
	os.RemoveAll(c.dir)
}

// URL is the connection URL of database db on the cluster.
func (c *Cluster) URL(db string) string {
	return "postgres://metal@/" + db + "?host=" + c.dir + "&port=5432"
}

// CreateDatabase creates database name and returns its URL. With a
// non-empty icuLocale it asks for an ICU database of that locale (as a
// site's would be) and falls back to a plain one on a server built
// without ICU.
func (c *Cluster) CreateDatabase(ctx context.Context, name, icuLocale string) (string, error) {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	plain := `CREATE DATABASE ` + pgx.Identifier{name}.Sanitize()
	if icuLocale != "" {
		icu := plain + ` TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE '` +
			strings.ReplaceAll(icuLocale, "'", "''") + `' LOCALE 'C.UTF-8'`
		if _, err := conn.Exec(ctx, icu); err == nil {
			return c.URL(name), nil
		}
	}
	if _, err := conn.Exec(ctx, plain); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return c.URL(name), nil
}

// Require starts a cluster for one test and stops it when the test ends;
// a machine without PostgreSQL skips the test (fails it under
// METAL_REQUIRE_ALL=1).
func Require(t testing.TB) *Cluster {
	t.Helper()
	c, err := Start()
	if errors.Is(err, ErrMissing) {
		testenv.Require(t, false, err.Error())
	}
	if err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

// Shared is one cluster for a whole test binary, started by the first
// test that needs it. The binary's TestMain calls Stop after m.Run.
type Shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

// Cluster returns the shared cluster, starting it on first use; a machine
// without PostgreSQL skips the test (fails it under METAL_REQUIRE_ALL=1).
func (s *Shared) Cluster(t testing.TB) *Cluster {
	t.Helper()
	s.once.Do(func() { s.c, s.err = Start() })
	if errors.Is(s.err, ErrMissing) {
		testenv.Require(t, false, s.err.Error())
	}
	if s.err != nil {
		t.Fatalf("start postgres: %v", s.err)
	}
	return s.c
}

// Stop stops the shared cluster if it was started.
func (s *Shared) Stop() { s.c.Stop() }

func major(initdb string) int {
	n, _ := strconv.Atoi(strings.Split(filepath.Base(filepath.Dir(filepath.Dir(initdb))), ".")[0])
	return n
}

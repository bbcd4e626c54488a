package inventory

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
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
)

// The PostgreSQL tests run against a real server: one throwaway cluster
// per test binary (initdb into a temporary dir, unix socket only, no TCP
// listener), one fresh database per test. TestMain stops it.

func TestMain(m *testing.M) {
	code := m.Run()
	pgShared.stop()
	os.Exit(code)
}

// errPGMissing marks a machine without the PostgreSQL server binaries.
var errPGMissing = errors.New("postgresql server binaries not found under /usr/lib/postgresql/*/bin: apt-get install postgresql")

type pgCluster struct {
	once sync.Once
	err  error
	bin  string // directory with initdb, pg_ctl
	dir  string // cluster root: data/, the socket, the log
	asPG bool   // run server tools as the postgres user (we are root)
	dbs  atomic.Int64
}

var pgShared = &pgCluster{}

// requireOrSkip fails under METAL_REQUIRE_ALL=1 and skips loudly otherwise.
func requireOrSkip(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("METAL_REQUIRE_ALL") == "1" {
		t.Fatalf("cannot run: %s (METAL_REQUIRE_ALL=1, so this is a failure)", why)
	}
	t.Skipf("SKIPPED, cannot run: %s (set METAL_REQUIRE_ALL=1 to make this a failure)", why)
}

// postgresURL returns the URL of a new, empty database on the shared
// test cluster, starting the cluster on first use.
func postgresURL(t testing.TB) string {
	t.Helper()
	c := pgShared
	c.once.Do(func() { c.err = c.start() })
	if errors.Is(c.err, errPGMissing) {
		requireOrSkip(t, c.err.Error())
	}
	if c.err != nil {
		t.Fatalf("start postgres: %v", c.err)
	}
	name := fmt.Sprintf("inv_%d", c.dbs.Add(1))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.url("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// An ICU en-US database, as a site's would be: its collation sorts
	// "a_a" before "a-b" before "a0", unlike SQLite, so the tests prove the
	// schema's bytewise ordering. Servers built without ICU get a plain
	// database.
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name+` TEMPLATE template0 ENCODING 'UTF8'
		LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`); err != nil {
		if _, err := conn.Exec(ctx, `CREATE DATABASE `+name); err != nil {
			t.Fatal(err)
		}
	}
	return c.url(name)
}

func (c *pgCluster) url(db string) string {
	return "postgres://metal@/" + db + "?host=" + c.dir + "&port=5432"
}

func (c *pgCluster) start() error {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		return errPGMissing
	}
	sort.Slice(bins, func(i, j int) bool { return pgMajor(bins[i]) < pgMajor(bins[j]) })
	c.bin = filepath.Dir(bins[len(bins)-1])
	dir, err := os.MkdirTemp("", "metal-pg-")
	if err != nil {
		return err
	}
	c.dir = dir
	if os.Geteuid() == 0 { // initdb refuses to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("%w (running as root needs the postgres user to own the cluster)", errPGMissing)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return err
		}
		c.asPG = true
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	if out, err := c.run("initdb", "-D", filepath.Join(dir, "data"), "-U", "metal", "--auth=trust",
		"-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		return fmt.Errorf("initdb: %v: %s", err, out)
	}
	opts := fmt.Sprintf("-k %s -p 5432 -c listen_addresses='' -c max_connections=200", dir)
	if out, err := c.run("pg_ctl", "-D", filepath.Join(dir, "data"), "-l", filepath.Join(dir, "log"),
		"-w", "-t", "60", "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		return fmt.Errorf("pg_ctl start: %v: %s\n%s", err, out, log)
	}
	return nil
}

func (c *pgCluster) run(tool string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, tool)
	var cmd *exec.Cmd
	if c.asPG {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}

func (c *pgCluster) stop() {
	if c.dir == "" {
		return
	}
	if _, err := os.Stat(filepath.Join(c.dir, "data", "postmaster.pid")); err == nil {
		c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "stop")
	}
	os.RemoveAll(c.dir)
}

func pgMajor(initdb string) int {
	n, _ := strconv.Atoi(strings.Split(filepath.Base(filepath.Dir(filepath.Dir(initdb))), ".")[0])
	return n
}

package inventory

import (
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

// Both stores keep their schema as embedded, numbered SQL files
// (NNNN_what.sql is schema version NNNN) and migrate the same way: refuse
// a database newer than the build, then apply each missing file in order.
// Where the version is kept and how migrations are made atomic is each
// dialect's own (SQLite: PRAGMA user_version, one transaction per file;
// PostgreSQL: a schema_version table, one transaction under an advisory
// lock).

// migrationNames returns the migrations in dir, in order, checking that
// they are numbered 0001, 0002, … without gaps.
func migrationNames(fsys fs.FS, dir string) ([]string, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for i, n := range names {
		if want := fmt.Sprintf("%04d_", i+1); !strings.HasPrefix(n, want) {
			return nil, fmt.Errorf("migration %s out of sequence (want prefix %s)", n, want)
		}
	}
	return names, nil
}

// runMigrations brings a database at schema version have up to
// len(names), calling apply with each missing migration's version and
// SQL, in order. A database newer than names is refused with
// ErrSchemaTooNew.
func runMigrations(fsys fs.FS, dir string, names []string, have int, apply func(version int, body string) error) error {
	if have > len(names) {
		return fmt.Errorf("%w: database schema version %d, this metald knows up to %d: upgrade metald or restore a backup", ErrSchemaTooNew, have, len(names))
	}
	for i := have; i < len(names); i++ {
		body, err := fs.ReadFile(fsys, dir+"/"+names[i])
		if err != nil {
			return err
		}
		if err := apply(i+1, string(body)); err != nil {
			return fmt.Errorf("migration %s: %w", names[i], err)
		}
	}
	return nil
}

// migrationSet is one dialect's migrations directory in its embedded
// file system.
type migrationSet struct {
	fsys fs.FS
	dir  string
}

// names returns the set's migrations in order (migrationNames).
func (m migrationSet) names() ([]string, error) { return migrationNames(m.fsys, m.dir) }

// version is the schema version the set brings a database to.
func (m migrationSet) version() int {
	names, _ := m.names()
	return len(names)
}

// run is runMigrations over the set, from schema version have.
func (m migrationSet) run(have int, apply func(version int, body string) error) error {
	names, err := m.names()
	if err != nil {
		return err
	}
	return runMigrations(m.fsys, m.dir, names, have, apply)
}

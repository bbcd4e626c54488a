package inventory

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// dialect is what the SQL store core (sqlstore*.go) needs to know of its
// database beyond database/sql: everything else, every query included,
// is the same for SQLite and PostgreSQL. Queries are written with ?
// placeholders and rebound before they reach the driver.
type dialect interface {
	// rebind turns a query's ? placeholders into the driver's.
	rebind(query string) string
	// unique reports whether err is a unique violation and names the
	// constraint (PostgreSQL) or the columns (SQLite) it hit.
	unique(err error) (string, bool)
	// forUpdate is appended to a SELECT whose rows the transaction
	// changes next: a row lock where several writers share the database,
	// nothing where a write transaction already excludes every other.
	forUpdate() string
	// beforeEvent runs in a transaction just before it inserts an event,
	// afterEvent just after, with the event's id.
	beforeEvent(ctx context.Context, tx *sql.Tx) error
	afterEvent(ctx context.Context, tx *sql.Tx, id int64) error
	// migrate brings the schema up to date from the dialect's own
	// migrations directory, refusing a newer schema (ErrSchemaTooNew).
	migrate(ctx context.Context, db *sql.DB) error
}

// questionMarks is the dialect helper for drivers that take ? as they
// are.
type questionMarks struct{}

func (questionMarks) rebind(q string) string { return q }

// dollarNumbers is the dialect helper for drivers that take $1, $2, …
type dollarNumbers struct{}

// rebind numbers the ? placeholders of q outside string literals.
func (dollarNumbers) rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	quoted := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			quoted = !quoted // '' inside a literal toggles twice
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// runTx runs fn in one transaction on db, rolling back when fn fails.
func runTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

package inventory

import (
	"errors"
	"testing"
)

func TestRebind(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`WHERE a = ? AND b = ?`, `WHERE a = $1 AND b = $2`},
		{`SET x = '?' WHERE id = ? AND y <> 'it''s ?'`, `SET x = '?' WHERE id = $1 AND y <> 'it''s ?'`},
		{`type LIKE ? ESCAPE '\' LIMIT ?`, `type LIKE $1 ESCAPE '\' LIMIT $2`},
	} {
		if got := (dollarNumbers{}).rebind(tc.in); got != tc.want {
			t.Errorf("rebind(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := (questionMarks{}).rebind(tc.in); got != tc.in {
			t.Errorf("questionMarks changed %q to %q", tc.in, got)
		}
	}
}

func TestSQLiteUnique(t *testing.T) {
	d := sqliteDialect{}
	if c, ok := d.unique(errors.New("constraint failed: UNIQUE constraint failed: machines.name (2067)")); !ok || c != "machines.name" {
		t.Errorf("unique = %q, %v", c, ok)
	}
	for _, err := range []error{nil, errors.New("FOREIGN KEY constraint failed")} {
		if _, ok := d.unique(err); ok {
			t.Errorf("unique(%v) = true", err)
		}
	}
}

// The driver's own error for a duplicate is recognised, with its columns.
func TestSQLiteUniqueFromDriver(t *testing.T) {
	s, _ := openTest(t)
	ins := `INSERT INTO tokens (id, name, hash, created_at) VALUES ('t1', 'n', x'00', 1)`
	if _, err := s.DB().Exec(ins); err != nil {
		t.Fatal(err)
	}
	_, err := s.DB().Exec(ins)
	if c, ok := (sqliteDialect{}).unique(err); !ok || c != "tokens.id" {
		t.Fatalf("unique(%v) = %q, %v", err, c, ok)
	}
}

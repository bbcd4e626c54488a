package inventory

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

func TestMigrationNames(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		want  string // joined names, or the error's text
	}{
		{"in order", []string{"0002_b.sql", "0001_a.sql"}, "0001_a.sql 0002_b.sql"},
		{"gap", []string{"0001_a.sql", "0003_c.sql"}, "migration 0003_c.sql out of sequence (want prefix 0002_)"},
		{"unnumbered", []string{"init.sql"}, "migration init.sql out of sequence (want prefix 0001_)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for _, f := range tc.files {
				fsys["m/"+f] = &fstest.MapFile{Data: []byte("-- " + f)}
			}
			names, err := migrationNames(fsys, "m")
			got := strings.Join(names, " ")
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRunMigrations(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0001_a.sql": {Data: []byte("A")},
		"m/0002_b.sql": {Data: []byte("B")},
		"m/0003_c.sql": {Data: []byte("C")},
	}
	names := []string{"0001_a.sql", "0002_b.sql", "0003_c.sql"}
	var got []string
	apply := func(v int, body string) error {
		got = append(got, body+string(rune('0'+v)))
		if body == "C" {
			return errors.New("boom")
		}
		return nil
	}
	err := runMigrations(fsys, "m", names, 1, apply)
	if strings.Join(got, ",") != "B2,C3" {
		t.Fatalf("applied %v, want the missing ones in order with their versions", got)
	}
	if err == nil || err.Error() != "migration 0003_c.sql: boom" {
		t.Fatalf("error %v, want it to name the failed migration", err)
	}
	got = nil
	if err := runMigrations(fsys, "m", names, 3, apply); err != nil || got != nil {
		t.Fatalf("up to date: applied %v, err %v", got, err)
	}
	err = runMigrations(fsys, "m", names, 4, apply)
	if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), "version 4, this metald knows up to 3") {
		t.Fatalf("newer schema: %v", err)
	}
}

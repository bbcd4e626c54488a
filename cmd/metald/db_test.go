package main

import (
	"context"
	"net/url"
	"strings"
	"testing"
)

func TestValidateDB(t *testing.T) {
	cases := []struct {
		db   string
		want string // "" means valid
	}{
		{"", ""},
		{"postgres://metal@/metal?host=/run/postgresql", ""},
		{"postgresql://metal:pw@db.example:5432/metal?sslmode=verify-full", ""},
		{"mysql://metal:hunter2@h/metal", "want postgres://"},
		{"/var/lib/metald/metald.db", "want postgres://"},
		{"postgres://metal:hunter2@h", "name the database"},
		{"postgres://metal:hunter2@h/", "name the database"},
		{"postgres://metal@h?password=hunter2", "name the database"},
		{"host=h user=metal password=hunter2 dbname=metal", "want postgres://"},
		{"host=h password='hunter2 x' dbname=metal", "want postgres://"},
	}
	for _, c := range cases {
		err := validateDB(c.db)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v", c.db, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: got %v, want error containing %q", c.db, err, c.want)
		case err != nil && strings.Contains(err.Error(), "hunter2"):
			t.Errorf("%q: error shows the password: %v", c.db, err)
		}
	}
	cfg := Config{DataDir: "d", DB: "mysql://x/y", HTTP: ":8080", DHCPMode: "off", Unknown: "ignore"}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--db") {
		t.Fatalf("Validate: %v, want an error naming --db", err)
	}
}

// TestOpenInventoryHidesPasswords: a --db metald cannot use or reach
// never shows its password, in user info, query or key=value form, and
// neither does the startup log's description of it.
func TestOpenInventoryHidesPasswords(t *testing.T) {
	for _, db := range []string{
		"postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=2",
		"postgres://u@127.0.0.1:1/db?password=hunter2&connect_timeout=2",
		"postgres://u@127.0.0.1:1/db?password=hunter2&sslmode=nonsense",
		"host=127.0.0.1 port=1 user=u password=hunter2 dbname=db",
	} {
		_, err := openInventory(context.Background(), db, t.TempDir())
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("--db %q: %v", db, err)
		}
		if _, where, _ := describeDB(db, "d"); strings.Contains(where, "hunter2") {
			t.Errorf("--db %q described as %q", db, where)
		}
	}
}

func TestOpenInventoryRefusesBadURLBeforeConnecting(t *testing.T) {
	_, err := openInventory(context.Background(), "postgres://u:hunter2@h", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "name the database") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("got %v", err)
	}
}

// FuzzValidateDB: whatever --db holds, the error never shows the URL's
// password.
func FuzzValidateDB(f *testing.F) {
	for _, s := range []string{"", "postgres://u:secretpw@h/db", "postgres://u:secretpw@h", "mysql://u:secretpw@h/x",
		"postgres://u:secret%zz@h/db", "postgres://[::1", "postgresql://u:p@/d?host=/run/postgresql"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, db string) {
		err := validateDB(db)
		if err == nil {
			return
		}
		u, perr := url.Parse(db)
		if perr != nil || u.User == nil {
			return
		}
		if pw, ok := u.User.Password(); ok && len(pw) >= 4 && strings.Contains(err.Error(), pw) &&
			!strings.Contains(strings.Replace(db, pw, "", 1), pw) {
			t.Fatalf("error %q shows the password %q", err, pw)
		}
	})
}

package inventory

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestDataDirIsPrivate: opening the SQLite store leaves the data dir 0700
// and the key and database files 0600, whether it creates them (under a
// permissive umask) or finds them wider.
func TestDataDirIsPrivate(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{name: "created", setup: func(t *testing.T, dir string) {}},
		{name: "existing empty dir 0777", setup: func(t *testing.T, dir string) {
			if err := os.Mkdir(dir, 0o777); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "existing files 0644 in a 0755 dir", setup: func(t *testing.T, dir string) {
			openAndWrite(t, dir).Close()
			for _, f := range []string{DBFile, DBFile + "-wal", DBFile + "-shm"} {
				// SQLite removed -wal and -shm at close: make them again,
				// empty, as a crash would have left them.
				p := filepath.Join(dir, f)
				fh, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
				if err != nil {
					t.Fatal(err)
				}
				fh.Close()
				if err := os.Chmod(p, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "metald-data")
			tt.setup(t, dir)
			s := openAndWrite(t, dir)
			want := map[string]os.FileMode{
				".":             0o700,
				KeyFile:         0o600,
				DBFile:          0o600,
				DBFile + "-wal": 0o600,
				DBFile + "-shm": 0o600,
			}
			for name, mode := range want {
				st, err := os.Stat(filepath.Join(dir, name))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if st.Mode().Perm() != mode {
					t.Errorf("%s has mode %o, want %o", name, st.Mode().Perm(), mode)
				}
			}
			s.Close()
		})
	}
}

// openAndWrite opens the store in dir and writes to it, so that SQLite
// has made its -wal and -shm files.
func openAndWrite(t *testing.T, dir string) *SQLite {
	t.Helper()
	s, err := OpenSQLite(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.AppendEvent(context.Background(), Event{Type: "test.write"}); err != nil {
		t.Fatal(err)
	}
	return s
}

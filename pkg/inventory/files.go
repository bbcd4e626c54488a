package inventory

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The data dir holds the sealing key, the SQLite database (with every
// machine's hardware facts, hashed tokens and sealed BMC credentials) and
// the images: only metald's own user may read it. The key is 0600 and
// refused when wider (seal.go); the directory and the database files are
// made private here, at every open, whatever the umask.

// privateDir creates dir with mode 0700, or, when it exists with group or
// other permissions, takes them away.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir %s: cannot create it: %w", dir, err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data dir %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("data dir %s is not a directory", dir)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(dir, perm&0o700); err != nil {
			return fmt.Errorf("data dir %s has mode %o and cannot be made private (chmod 700 it): %w", dir, perm, err)
		}
	}
	return nil
}

// dbFiles are the SQLite database's files in the data dir.
var dbFiles = []string{DBFile, DBFile + "-wal", DBFile + "-shm"}

// privateDBFiles creates the SQLite database file with mode 0600 before
// SQLite opens it (SQLite gives its -wal and -shm files the database
// file's mode) and takes group and other permissions off any of the
// three that exists with them.
func privateDBFiles(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, DBFile), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		if err := f.Close(); err != nil {
			return fmt.Errorf("create database file: %w", err)
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create database file: %w", err)
	}
	for _, name := range dbFiles {
		path := filepath.Join(dir, name)
		st, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return fmt.Errorf("database file %s: %w", path, err)
		}
		if perm := st.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(path, perm&0o600); err != nil {
				return fmt.Errorf("database file %s has mode %o and cannot be made private (chmod 600 it): %w", path, perm, err)
			}
		}
	}
	return nil
}

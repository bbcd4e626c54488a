package main

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"

	"github.com/metal-iaas/metal/internal/retention"
	"github.com/metal-iaas/metal/pkg/inventory"
)

// inventoryStore is what metald's commands need from the inventory: the
// SQLite store in the data dir or the PostgreSQL one named by --db.
type inventoryStore interface {
	inventory.Store
	inventory.JobStore
	retention.Pruner
}

// validateDB checks --db: empty (SQLite in the data dir) or a
// postgres:// / postgresql:// URL. The password never appears in errors.
func validateDB(db string) error {
	if db == "" {
		return nil
	}
	if !inventory.IsPostgresURL(db) {
		return fmt.Errorf("--db %s: want postgres://user@host/dbname or postgresql://… (leave empty for SQLite in the data dir)", inventory.RedactURL(db))
	}
	u, err := url.Parse(db)
	if err != nil {
		return fmt.Errorf("--db: not a URL (%s)", inventory.RedactURL(db))
	}
	if u.Path == "" || u.Path == "/" {
		return fmt.Errorf("--db %s: name the database, e.g. postgres://metal@/metal?host=/run/postgresql", inventory.RedactURL(db))
	}
	return nil
}

// openInventory opens the store --db selects. The data dir holds the
// sealing key either way.
func openInventory(ctx context.Context, db, dataDir string) (inventoryStore, error) {
	if db == "" {
		s, err := inventory.OpenSQLite(ctx, dataDir)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	if err := validateDB(db); err != nil {
		return nil, err
	}
	s, err := inventory.OpenPostgres(ctx, db, dataDir)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// describeDB names the database for the startup log, without secrets.
func describeDB(db, dataDir string) (backend, where string, schema int) {
	if db == "" {
		return "sqlite", filepath.Join(dataDir, inventory.DBFile), inventory.SchemaVersion()
	}
	return "postgres", inventory.RedactURL(db), inventory.PostgresSchemaVersion()
}

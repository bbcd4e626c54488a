package inventory

import (
	"context"
	"database/sql"
)

// PutLease creates or replaces the lease of a MAC.
func (s *SQLite) PutLease(ctx context.Context, l Lease) error {
	l, err := prepareLease(l)
	if err != nil {
		return err
	}
	mac := l.MAC
	now := s.now()
	return runTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM leases WHERE ip = ? AND mac != ?`, l.IP, mac); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO leases (mac, ip, hostname, state, expires_at, updated_at) VALUES (?,?,?,?,?,?)
			ON CONFLICT(mac) DO UPDATE SET ip=excluded.ip, hostname=excluded.hostname, state=excluded.state,
			expires_at=excluded.expires_at, updated_at=excluded.updated_at`,
			mac, l.IP, l.Hostname, l.State, unixNano(l.ExpiresAt), now.UnixNano())
		return err
	})
}

// GetLease returns the lease of a MAC.
func (s *SQLite) GetLease(ctx context.Context, mac string) (Lease, error) {
	return leaseByMAC(ctx, s.queryLeases, `WHERE mac = ?`, mac)
}

// LeaseByIP returns the lease holding an address.
func (s *SQLite) LeaseByIP(ctx context.Context, ip string) (Lease, error) {
	return leaseByIP(ctx, s.queryLeases, `WHERE ip = ?`, ip)
}

// DeleteLease removes the lease of a MAC.
func (s *SQLite) DeleteLease(ctx context.Context, mac string) error {
	norm, err := NormalizeMAC(mac)
	if err != nil {
		return err
	}
	return runTx(ctx, s.db, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM leases WHERE mac = ?`, norm)
		return err
	})
}

// ListLeases returns every lease ordered by address.
func (s *SQLite) ListLeases(ctx context.Context) ([]Lease, error) {
	return s.queryLeases(ctx, `ORDER BY ip`)
}

func (s *SQLite) queryLeases(ctx context.Context, clause string, args ...any) ([]Lease, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+leaseCols+` FROM leases `+clause, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanAll(rows, scanLease)
}

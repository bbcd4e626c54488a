package inventory

import (
	"context"
	"fmt"
)

// PutLease creates or replaces the lease of a MAC, taking its address
// from any other MAC that held it.
func (s *sqlStore) PutLease(ctx context.Context, l Lease) error {
	l, err := prepareLease(l)
	if err != nil {
		return err
	}
	mac := l.MAC
	now := s.now()
	return s.tx(ctx, func(tx sqlTx) error {
		if _, err := tx.exec(ctx, `DELETE FROM leases WHERE ip = ? AND mac <> ?`, l.IP, mac); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `INSERT INTO leases (mac, ip, hostname, state, expires_at, updated_at) VALUES (?,?,?,?,?,?)
			ON CONFLICT (mac) DO UPDATE SET ip = excluded.ip, hostname = excluded.hostname, state = excluded.state,
			expires_at = excluded.expires_at, updated_at = excluded.updated_at`,
			mac, l.IP, l.Hostname, l.State, unixNano(l.ExpiresAt), now.UnixNano())
		if _, ok := tx.d.unique(err); ok { // PostgreSQL: another metald's lease of the address
			return fmt.Errorf("%w: ip %s was leased to another mac at the same moment", ErrConflict, l.IP)
		}
		return err
	})
}

// GetLease returns the lease of a MAC.
func (s *sqlStore) GetLease(ctx context.Context, mac string) (Lease, error) {
	return leaseByMAC(ctx, s.queryLeases, `WHERE mac = ?`, mac)
}

// LeaseByIP returns the lease holding an address.
func (s *sqlStore) LeaseByIP(ctx context.Context, ip string) (Lease, error) {
	return leaseByIP(ctx, s.queryLeases, `WHERE ip = ?`, ip)
}

// DeleteLease removes the lease of a MAC.
func (s *sqlStore) DeleteLease(ctx context.Context, mac string) error {
	norm, err := NormalizeMAC(mac)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `DELETE FROM leases WHERE mac = ?`, norm)
	return err
}

// ListLeases returns every lease ordered by address (bytewise on both
// databases).
func (s *sqlStore) ListLeases(ctx context.Context) ([]Lease, error) {
	return s.queryLeases(ctx, `ORDER BY ip`)
}

func (s *sqlStore) queryLeases(ctx context.Context, clause string, args ...any) ([]Lease, error) {
	return queryAll(ctx, s, `SELECT `+leaseCols+` FROM leases `+clause, scanLease, args...)
}

// queryAll runs a query and scans every row of its result.
func queryAll[T any](ctx context.Context, s *sqlStore, q string, scan func(scanner) (T, error), args ...any) ([]T, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanAll(rows, scan)
}

package inventory

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
)

// The DHCPv4 leases live in table leases, the DHCPv6 ones in leases6:
// one of each per MAC.
const (
	leasesV4 = "leases"
	leasesV6 = "leases6"
)

// PutLease creates or replaces the DHCPv4 lease of a MAC, taking its
// address from any other MAC that held it.
func (s *sqlStore) PutLease(ctx context.Context, l Lease) error {
	l, err := prepareLease(l)
	if err != nil {
		return err
	}
	return s.putLease(ctx, leasesV4, l)
}

// PutLease6 creates or replaces the DHCPv6 lease of a MAC, taking its
// address from any other MAC that held it.
func (s *sqlStore) PutLease6(ctx context.Context, l Lease) error {
	a, err := netip.ParseAddr(strings.TrimSpace(l.IP))
	if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() {
		return fmt.Errorf("%w: DHCPv6 lease ip %q is not an assignable IPv6 address", ErrInvalid, l.IP)
	}
	if l.MAC, err = NormalizeMAC(l.MAC); err != nil {
		return err
	}
	l.IP = a.String()
	return s.putLease(ctx, leasesV6, l)
}

// putLease writes a lease already validated and normalised.
func (s *sqlStore) putLease(ctx context.Context, table string, l Lease) error {
	mac := l.MAC
	now := s.now()
	return s.tx(ctx, func(tx sqlTx) error {
		if _, err := tx.exec(ctx, `DELETE FROM `+table+` WHERE ip = ? AND mac <> ?`, l.IP, mac); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `INSERT INTO `+table+` (mac, ip, hostname, state, expires_at, updated_at) VALUES (?,?,?,?,?,?)
			ON CONFLICT (mac) DO UPDATE SET ip = excluded.ip, hostname = excluded.hostname, state = excluded.state,
			expires_at = excluded.expires_at, updated_at = excluded.updated_at`,
			mac, l.IP, l.Hostname, l.State, unixNano(l.ExpiresAt), now.UnixNano())
		if _, ok := tx.d.unique(err); ok { // PostgreSQL: another metald's lease of the address
			return fmt.Errorf("%w: ip %s was leased to another mac at the same moment", ErrConflict, l.IP)
		}
		return err
	})
}

// GetLease returns the DHCPv4 lease of a MAC.
func (s *sqlStore) GetLease(ctx context.Context, mac string) (Lease, error) {
	return leaseByMAC(ctx, s.leasesIn(leasesV4), `WHERE mac = ?`, mac)
}

// GetLease6 returns the DHCPv6 lease of a MAC.
func (s *sqlStore) GetLease6(ctx context.Context, mac string) (Lease, error) {
	return leaseByMAC(ctx, s.leasesIn(leasesV6), `WHERE mac = ?`, mac)
}

// LeaseByIP returns the lease (v4 or v6) holding an address.
func (s *sqlStore) LeaseByIP(ctx context.Context, ip string) (Lease, error) {
	table := leasesV4
	if a, err := netip.ParseAddr(ip); err == nil && a.Is6() && !a.Is4In6() {
		table = leasesV6
		ip = a.String()
	}
	return leaseByIP(ctx, s.leasesIn(table), `WHERE ip = ?`, ip)
}

// DeleteLease removes the DHCPv4 lease of a MAC.
func (s *sqlStore) DeleteLease(ctx context.Context, mac string) error {
	return s.deleteLease(ctx, leasesV4, mac)
}

// DeleteLease6 removes the DHCPv6 lease of a MAC.
func (s *sqlStore) DeleteLease6(ctx context.Context, mac string) error {
	return s.deleteLease(ctx, leasesV6, mac)
}

func (s *sqlStore) deleteLease(ctx context.Context, table, mac string) error {
	norm, err := NormalizeMAC(mac)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `DELETE FROM `+table+` WHERE mac = ?`, norm)
	return err
}

// ListLeases returns every lease, DHCPv4 then DHCPv6, each ordered by
// address (bytewise on both databases).
func (s *sqlStore) ListLeases(ctx context.Context) ([]Lease, error) {
	v4, err := s.leasesIn(leasesV4)(ctx, `ORDER BY ip`)
	if err != nil {
		return nil, err
	}
	v6, err := s.leasesIn(leasesV6)(ctx, `ORDER BY ip`)
	return append(v4, v6...), err
}

// ListLeases6 returns the DHCPv6 leases ordered by address.
func (s *sqlStore) ListLeases6(ctx context.Context) ([]Lease, error) {
	return s.leasesIn(leasesV6)(ctx, `ORDER BY ip`)
}

// leasesIn queries one of the two lease tables.
func (s *sqlStore) leasesIn(table string) query[Lease] {
	return func(ctx context.Context, clause string, args ...any) ([]Lease, error) {
		return queryAll(ctx, s, `SELECT `+leaseCols+` FROM `+table+` `+clause, scanLease, args...)
	}
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

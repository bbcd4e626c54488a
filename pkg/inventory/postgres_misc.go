package inventory

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// CreateToken makes a token and returns it with its secret, which is
// shown only this once: metal_<id>_<secret>.
func (s *Postgres) CreateToken(ctx context.Context, name string) (Token, string, error) {
	id, secret, hash, err := newAPIToken(name)
	if err != nil {
		return Token{}, "", err
	}
	now := s.now()
	if _, err := s.pool.Exec(ctx, `INSERT INTO tokens (id, name, hash, created_at) VALUES ($1,$2,$3,$4)`, id, name, hash, now.UnixNano()); err != nil {
		return Token{}, "", err
	}
	return Token{ID: id, Name: name, CreatedAt: now.UTC()}, formatAPIToken(id, secret), nil
}

// ListTokens returns all tokens, without secrets.
func (s *Postgres) ListTokens(ctx context.Context) ([]Token, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+tokenCols+` FROM tokens ORDER BY created_at`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanAll(rows, scanToken)
}

// RevokeToken disables a token by id.
func (s *Postgres) RevokeToken(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at = 0`, s.now().UnixNano(), id)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: no active token with id %q", ErrNotFound, id)
	}
	return nil
}

// CheckToken validates a secret in constant time against its stored hash.
func (s *Postgres) CheckToken(ctx context.Context, secret string) (Token, error) {
	id, sec, ok := parseAPIToken(secret)
	if !ok {
		return Token{}, ErrUnauthorized
	}
	t, err := verifyAPIToken(s.pool.QueryRow(ctx, `SELECT `+tokenCheckCols+` FROM tokens WHERE id = $1`, id), sec)
	if err != nil {
		return Token{}, err
	}
	if now := s.now(); tokenUseDue(now, t) {
		_, _ = s.pool.Exec(ctx, `UPDATE tokens SET last_used_at = $1 WHERE id = $2`, now.UnixNano(), id)
	}
	return t, nil
}

// PutLease creates or replaces the lease of a MAC.
func (s *Postgres) PutLease(ctx context.Context, l Lease) error {
	l, err := prepareLease(l)
	if err != nil {
		return err
	}
	mac := l.MAC
	now := s.now()
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM leases WHERE ip = $1 AND mac <> $2`, l.IP, mac); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO leases (mac, ip, hostname, state, expires_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6)
			ON CONFLICT (mac) DO UPDATE SET ip = excluded.ip, hostname = excluded.hostname, state = excluded.state,
			expires_at = excluded.expires_at, updated_at = excluded.updated_at`,
			mac, l.IP, l.Hostname, l.State, unixNano(l.ExpiresAt), now.UnixNano())
		if _, ok := (pgDialect{}).unique(err); ok {
			return fmt.Errorf("%w: ip %s was leased to another mac at the same moment", ErrConflict, l.IP)
		}
		return err
	})
}

// GetLease returns the lease of a MAC.
func (s *Postgres) GetLease(ctx context.Context, mac string) (Lease, error) {
	return leaseByMAC(ctx, s.queryLeases, `WHERE mac = $1`, mac)
}

// LeaseByIP returns the lease holding an address.
func (s *Postgres) LeaseByIP(ctx context.Context, ip string) (Lease, error) {
	return leaseByIP(ctx, s.queryLeases, `WHERE ip = $1`, ip)
}

// DeleteLease removes the lease of a MAC.
func (s *Postgres) DeleteLease(ctx context.Context, mac string) error {
	norm, err := NormalizeMAC(mac)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `DELETE FROM leases WHERE mac = $1`, norm)
	return err
}

// ListLeases returns every lease ordered by address (bytewise, as SQLite).
func (s *Postgres) ListLeases(ctx context.Context) ([]Lease, error) {
	return s.queryLeases(ctx, `ORDER BY ip`)
}

func (s *Postgres) queryLeases(ctx context.Context, clause string, args ...any) ([]Lease, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+leaseCols+` FROM leases `+clause, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanAll(rows, scanLease)
}

// PutImage records an image, replacing one of the same name.
func (s *Postgres) PutImage(ctx context.Context, img Image) error {
	img, err := prepareImage(img, s.now)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO images (name, file, format, chain, size, virtual_size, sha256, raw_sha256, created_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (name) DO UPDATE SET file = excluded.file, format = excluded.format,
		chain = excluded.chain, size = excluded.size, virtual_size = excluded.virtual_size, sha256 = excluded.sha256,
		raw_sha256 = excluded.raw_sha256, created_at = excluded.created_at`,
		img.Name, img.File, img.Format, strings.Join(img.Chain, ","), img.Size, img.VirtualSize, img.SHA256, img.RawSHA256, img.CreatedAt.UnixNano())
	return err
}

// GetImage returns an image by name.
func (s *Postgres) GetImage(ctx context.Context, name string) (Image, error) {
	return imageByName(ctx, s.queryImages, `WHERE name = $1`, name)
}

// ListImages returns every image by name.
func (s *Postgres) ListImages(ctx context.Context) ([]Image, error) {
	return s.queryImages(ctx, `ORDER BY name`)
}

// DeleteImage forgets an image; the caller removes its file.
func (s *Postgres) DeleteImage(ctx context.Context, name string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM images WHERE name = $1`, name)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return notFound("image", name)
	}
	return nil
}

func (s *Postgres) queryImages(ctx context.Context, clause string, args ...any) ([]Image, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+imageCols+` FROM images `+clause, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanAll(rows, scanImage)
}

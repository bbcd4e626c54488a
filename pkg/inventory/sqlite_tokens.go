package inventory

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"fmt"
	"time"
)

// tokenPrefix makes metal tokens recognisable in logs and secret scanners.
const tokenPrefix = "metal_"

// CreateToken makes a token and returns it with its secret, which is
// shown only this once: metal_<id>_<secret>.
func (s *SQLite) CreateToken(ctx context.Context, name string) (Token, string, error) {
	id, secret, hash, err := newAPIToken(name)
	if err != nil {
		return Token{}, "", err
	}
	now := s.now()
	err = s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO tokens (id, name, hash, created_at) VALUES (?,?,?,?)`, id, name, hash, now.UnixNano())
		return err
	})
	if err != nil {
		return Token{}, "", err
	}
	return Token{ID: id, Name: name, CreatedAt: now.UTC()}, tokenPrefix + id + "_" + secret, nil
}

// ListTokens returns all tokens, without secrets.
func (s *SQLite) ListTokens(ctx context.Context) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tokenCols+` FROM tokens ORDER BY created_at`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanAll(rows, scanToken)
}

// RevokeToken disables a token by id.
func (s *SQLite) RevokeToken(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, s.now().UnixNano(), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: no active token with id %q", ErrNotFound, id)
		}
		return nil
	})
}

// CheckToken validates a secret in constant time against its stored hash.
func (s *SQLite) CheckToken(ctx context.Context, secret string) (Token, error) {
	id, sec, ok := parseAPIToken(secret)
	if !ok {
		return Token{}, ErrUnauthorized
	}
	var t Token
	var hash []byte
	var c, u, r int64
	err := s.db.QueryRowContext(ctx, `SELECT id, name, hash, created_at, last_used_at, revoked_at FROM tokens WHERE id = ?`, id).
		Scan(&t.ID, &t.Name, &hash, &c, &u, &r)
	if err != nil {
		return Token{}, ErrUnauthorized
	}
	sum := sha256.Sum256([]byte(sec))
	if subtle.ConstantTimeCompare(sum[:], hash) != 1 || r != 0 {
		return Token{}, ErrUnauthorized
	}
	t.CreatedAt, t.LastUsedAt = fromNano(c), fromNano(u)
	// Record use at most once a minute so reads don't become writes.
	if now := s.now(); now.Sub(t.LastUsedAt) > time.Minute {
		_, _ = s.db.ExecContext(ctx, `UPDATE tokens SET last_used_at = ? WHERE id = ?`, now.UnixNano(), id)
	}
	return t, nil
}

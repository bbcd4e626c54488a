package inventory

import (
	"context"
	"fmt"
)

// CreateToken makes a token and returns it with its secret, which is
// shown only this once: metal_<id>_<secret>.
func (s *sqlStore) CreateToken(ctx context.Context, name string) (Token, string, error) {
	id, secret, hash, err := newAPIToken(name)
	if err != nil {
		return Token{}, "", err
	}
	now := s.now()
	if _, err := s.exec(ctx, `INSERT INTO tokens (id, name, hash, created_at) VALUES (?,?,?,?)`, id, name, hash, now.UnixNano()); err != nil {
		return Token{}, "", err
	}
	return Token{ID: id, Name: name, CreatedAt: now.UTC()}, formatAPIToken(id, secret), nil
}

// ListTokens returns all tokens, without secrets.
func (s *sqlStore) ListTokens(ctx context.Context) ([]Token, error) {
	return queryAll(ctx, s, `SELECT `+tokenCols+` FROM tokens ORDER BY created_at`, scanToken)
}

// RevokeToken disables a token by id.
func (s *sqlStore) RevokeToken(ctx context.Context, id string) error {
	n, err := affected(s.exec(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, s.now().UnixNano(), id))
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: no active token with id %q", ErrNotFound, id)
	}
	return nil
}

// CheckToken validates a secret in constant time against its stored hash.
func (s *sqlStore) CheckToken(ctx context.Context, secret string) (Token, error) {
	id, sec, ok := parseAPIToken(secret)
	if !ok {
		return Token{}, ErrUnauthorized
	}
	t, err := verifyAPIToken(s.queryRow(ctx, `SELECT `+tokenCheckCols+` FROM tokens WHERE id = ?`, id), sec)
	if err != nil {
		return Token{}, err
	}
	if now := s.now(); tokenUseDue(now, t) {
		_, _ = s.exec(ctx, `UPDATE tokens SET last_used_at = ? WHERE id = ?`, now.UnixNano(), id)
	}
	return t, nil
}

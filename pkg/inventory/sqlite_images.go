package inventory

import (
	"context"
	"database/sql"
	"strings"
)

// PutImage records an image, replacing one of the same name.
func (s *SQLite) PutImage(ctx context.Context, img Image) error {
	img, err := prepareImage(img, s.now)
	if err != nil {
		return err
	}
	return runTx(ctx, s.db, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO images (name, file, format, chain, size, virtual_size, sha256, raw_sha256, created_at)
			VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET file=excluded.file, format=excluded.format,
			chain=excluded.chain, size=excluded.size, virtual_size=excluded.virtual_size, sha256=excluded.sha256,
			raw_sha256=excluded.raw_sha256, created_at=excluded.created_at`,
			img.Name, img.File, img.Format, strings.Join(img.Chain, ","), img.Size, img.VirtualSize, img.SHA256, img.RawSHA256, img.CreatedAt.UnixNano())
		return err
	})
}

// GetImage returns an image by name.
func (s *SQLite) GetImage(ctx context.Context, name string) (Image, error) {
	return imageByName(ctx, s.queryImages, `WHERE name = ?`, name)
}

// ListImages returns every image by name.
func (s *SQLite) ListImages(ctx context.Context) ([]Image, error) {
	return s.queryImages(ctx, `ORDER BY name`)
}

// DeleteImage forgets an image; the caller removes its file.
func (s *SQLite) DeleteImage(ctx context.Context, name string) error {
	return runTx(ctx, s.db, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM images WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("image", name)
		}
		return nil
	})
}

func (s *SQLite) queryImages(ctx context.Context, clause string, args ...any) ([]Image, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+imageCols+` FROM images `+clause, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanAll(rows, scanImage)
}

package inventory

import (
	"context"
	"strings"
)

// PutImage records an image, replacing one of the same name.
func (s *sqlStore) PutImage(ctx context.Context, img Image) error {
	img, err := prepareImage(img, s.now)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO images (name, file, format, chain, size, virtual_size, sha256, raw_sha256, created_at)
		VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (name) DO UPDATE SET file = excluded.file, format = excluded.format,
		chain = excluded.chain, size = excluded.size, virtual_size = excluded.virtual_size, sha256 = excluded.sha256,
		raw_sha256 = excluded.raw_sha256, created_at = excluded.created_at`,
		img.Name, img.File, img.Format, strings.Join(img.Chain, ","), img.Size, img.VirtualSize, img.SHA256, img.RawSHA256, img.CreatedAt.UnixNano())
	return err
}

// GetImage returns an image by name.
func (s *sqlStore) GetImage(ctx context.Context, name string) (Image, error) {
	return imageByName(ctx, s.queryImages, `WHERE name = ?`, name)
}

// ListImages returns every image by name.
func (s *sqlStore) ListImages(ctx context.Context) ([]Image, error) {
	return s.queryImages(ctx, `ORDER BY name`)
}

// DeleteImage forgets an image; the caller removes its file.
func (s *sqlStore) DeleteImage(ctx context.Context, name string) error {
	n, err := affected(s.exec(ctx, `DELETE FROM images WHERE name = ?`, name))
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound("image", name)
	}
	return nil
}

func (s *sqlStore) queryImages(ctx context.Context, clause string, args ...any) ([]Image, error) {
	return queryAll(ctx, s, `SELECT `+imageCols+` FROM images `+clause, scanImage, args...)
}

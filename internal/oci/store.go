package oci

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/metal-iaas/metal/pkg/ocidisk"
)

// Store keeps image files in one registry repository, shared by every
// metald configured with it (metald serve --image-store
// oci://HOST[:PORT]/PREFIX): each image is the tag of its name in PREFIX,
// an artifact as Push writes it, whose one layer is the file (its digest
// the file's SHA-256).
type Store struct {
	repo name.Repository
	o    Options

	mu   sync.Mutex
	seen map[string]Entry // List's cache: each tag's entry at its last digest
}

// NewStore reads oci://HOST[:PORT]/PREFIX (no tag: the images are the
// tags).
func NewStore(ref string, o Options) (*Store, error) {
	rest, ok := strings.CutPrefix(ref, Scheme)
	if !ok || !strings.Contains(strings.Trim(rest, "/"), "/") {
		return nil, fmt.Errorf("image store %q: want %sHOST[:PORT]/PREFIX", ref, Scheme)
	}
	opts := []name.Option{name.StrictValidation}
	if o.PlainHTTP {
		opts = append(opts, name.Insecure)
	}
	repo, err := name.NewRepository(strings.Trim(rest, "/"), opts...)
	if err != nil {
		return nil, fmt.Errorf("image store %q: %w", ref, err)
	}
	return &Store{repo: repo, o: o}, nil
}

// String is the store's repository.
func (s *Store) String() string { return s.repo.Name() }

func (s *Store) tag(image string) name.Tag { return s.repo.Tag(image) }

// Put pushes f as image (replacing what the tag named).
func (s *Store) Put(ctx context.Context, image string, f File, annotations map[string]string) (string, error) {
	return Push(ctx, s.tag(image), f, annotations, s.o)
}

// Open reads the file of image whose SHA-256 is sha256hex; the last Read
// fails unless the content matched it.
func (s *Store) Open(ctx context.Context, sha256hex string) (io.ReadCloser, error) {
	p, err := remote.NewPuller(s.o.remoteOptions()...)
	if err != nil {
		return nil, classify(err, s.String())
	}
	l, err := p.Layer(ctx, s.repo.Digest("sha256:"+sha256hex))
	if err != nil {
		return nil, classify(err, "blob sha256:"+sha256hex+" in "+s.String())
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, classify(err, "blob sha256:"+sha256hex+" in "+s.String())
	}
	return rc, nil
}

// Annotations returns the annotations of image's file (its artifact's one
// layer), as Put wrote them.
func (s *Store) Annotations(ctx context.Context, image string) (map[string]string, error) {
	p, err := remote.NewPuller(s.o.remoteOptions()...)
	if err != nil {
		return nil, classify(err, s.String())
	}
	desc, err := p.Get(ctx, s.tag(image))
	if err != nil {
		return nil, classify(err, "image "+image+" in "+s.String())
	}
	m, err := ocidisk.ParseManifest(desc.Manifest)
	if err != nil {
		return nil, fmt.Errorf("%w: image %s in %s: %v", ErrRefused, image, s, err)
	}
	if len(m.Layers) != 1 {
		return nil, fmt.Errorf("%w: image %s in %s has %d layers, want its one file", ErrRefused, image, s, len(m.Layers))
	}
	return m.Layers[0].Annotations, nil
}

// Delete removes image's manifest from the store (its blobs are the
// registry's garbage collector's).
func (s *Store) Delete(ctx context.Context, image string) error {
	p, err := remote.NewPuller(s.o.remoteOptions()...)
	if err != nil {
		return classify(err, s.String())
	}
	desc, err := p.Head(ctx, s.tag(image))
	if err != nil {
		return classify(err, "image "+image+" in "+s.String())
	}
	w, err := remote.NewPusher(s.o.remoteOptions()...)
	if err != nil {
		return classify(err, s.String())
	}
	if err := w.Delete(ctx, s.repo.Digest(desc.Digest.String())); err != nil {
		return classify(err, "delete of image "+image+" in "+s.String())
	}
	return nil
}

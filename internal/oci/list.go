package oci

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/metal-iaas/metal/pkg/ocidisk"
)

// listConcurrency bounds the manifest requests one List has in flight.
const listConcurrency = 4

// Entry is one tag of a store as List reads it: the artifact Put wrote
// (File set), or, with Err set, why the tag is not one (another image
// pushed into the prefix, a manifest of another shape).
type Entry struct {
	// Image is the tag.
	Image string
	// Digest is the tag's manifest digest.
	Digest string
	// File is the artifact's one layer: the image file's digest, size,
	// media type and annotations.
	File ocidisk.Descriptor
	// Annotations of the manifest.
	Annotations map[string]string
	// Err says why the tag is no artifact of the store (ErrRefused).
	Err error
	// New is set when the tag's manifest was read by this List (first
	// seen, or its digest changed); an unchanged tag is read from the
	// cache.
	New bool
}

// List reads every tag of the store: one tag list (paginated), one HEAD
// per tag for its manifest digest, and a GET of the manifest only for a
// tag whose digest this Store has not read before (the entries are kept
// by digest). A repository that does not exist yet is an empty store;
// any other failure fails the whole List, so that the caller never takes
// a partial listing for the store's content.
func (s *Store) List(ctx context.Context) ([]Entry, error) {
	p, err := remote.NewPuller(s.o.remoteOptions()...)
	if err != nil {
		return nil, classify(err, s.String())
	}
	tags, err := p.List(ctx, s.repo)
	if err != nil {
		if err := classify(err, "repository "+s.String()); errors.Is(err, ErrNotFound) {
			s.forget(nil)
			return nil, nil // nothing pushed yet
		}
		return nil, classify(err, "tags of "+s.String())
	}
	slices.Sort(tags)
	out := make([]Entry, len(tags))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(listConcurrency)
	for i, tag := range tags {
		g.Go(func() error {
			e, err := s.entry(gctx, p, tag)
			out[i] = e
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	// A tag deleted between the list and its HEAD is not in the store.
	out = slices.DeleteFunc(out, func(e Entry) bool { return e.Image == "" })
	s.forget(out)
	return out, nil
}

// entry reads one tag: its digest by HEAD, its manifest by digest unless
// the cache holds that digest. A tag gone since the list is the zero
// Entry; an error is a failure to talk to the registry, not a tag that is
// no artifact (that is Entry.Err).
func (s *Store) entry(ctx context.Context, p *remote.Puller, tag string) (Entry, error) {
	what := "image " + tag + " in " + s.String()
	desc, err := p.Head(ctx, s.tag(tag))
	if err != nil {
		return Entry{}, gone(classify(err, what))
	}
	digest := desc.Digest.String()
	s.mu.Lock()
	cached, ok := s.seen[tag]
	s.mu.Unlock()
	if ok && cached.Digest == digest {
		cached.New = false
		return cached, nil
	}
	e := Entry{Image: tag, Digest: digest, New: true}
	if ocidisk.IsIndex(string(desc.MediaType)) {
		e.Err = fmt.Errorf("%w: %s is an image index (%s), not an image the store holds", ErrRefused, what, desc.MediaType)
	} else if d, err := p.Get(ctx, s.repo.Digest(digest)); err != nil { // checked against digest
		return Entry{}, gone(classify(err, what))
	} else {
		e.File, e.Annotations, e.Err = storeArtifact(d.Manifest)
		if e.Err != nil {
			e.Err = fmt.Errorf("%w: %s: %w", ErrRefused, what, e.Err)
		}
	}
	s.mu.Lock()
	if s.seen == nil {
		s.seen = map[string]Entry{}
	}
	s.seen[tag] = e
	s.mu.Unlock()
	return e, nil
}

// gone is nil for a tag deleted while List read it: it is not listed.
func gone(err error) error {
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// storeArtifact checks that b is a manifest as Put writes it (artifact
// type ArtifactType, one layer: the file) and returns its layer and
// annotations.
func storeArtifact(b []byte) (ocidisk.Descriptor, map[string]string, error) {
	m, err := ocidisk.ParseManifest(b)
	if err != nil {
		return ocidisk.Descriptor{}, nil, err
	}
	if m.ArtifactType != ArtifactType {
		what := "a container image"
		if m.ArtifactType != "" {
			what = "an artifact of type " + m.ArtifactType
		}
		return ocidisk.Descriptor{}, nil, fmt.Errorf("%s, not a metald image (artifactType %s)", what, ArtifactType)
	}
	if len(m.Layers) != 1 {
		return ocidisk.Descriptor{}, nil, fmt.Errorf("%d layers, want the image's one file", len(m.Layers))
	}
	return m.Layers[0], m.Annotations, nil
}

// forget drops the cached entries of tags not in live (all with nil).
func (s *Store) forget(live []Entry) {
	keep := map[string]bool{}
	for _, e := range live {
		keep[e.Image] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for tag := range s.seen {
		if !keep[tag] {
			delete(s.seen, tag)
		}
	}
}

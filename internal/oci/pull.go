package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/metal-iaas/metal/pkg/ocidisk"
)

// Disk is a disk image found in a registry, open for reading: Read gives
// the disk file's bytes (a containerDisk's disk/ file, or an artifact's
// layer), and returns io.EOF only once every blob read has been checked
// against its digest — a mismatch is the last Read's error, so a reader
// that consumes to EOF keeps nothing bad.
type Disk struct {
	// Manifest is the resolved manifest, REPO@sha256:….
	Manifest string
	// Platform is the index entry taken, empty without an index.
	Platform string
	Kind     ocidisk.Kind
	// File is the disk's path in a containerDisk's layer, or an
	// artifact's title annotation.
	File string
	// DiskType is the artifact's disktype annotation (a hint).
	DiskType string
	// Total is how many blob bytes the pull reads at most (progress).
	Total int64

	disk    io.Reader
	finish  func() error
	read    *atomic.Int64
	stopped bool
	err     error // sticky: every read after a failure fails
}

// Read reads the disk's bytes.
func (d *Disk) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if d.stopped {
		return 0, io.EOF
	}
	n, err := d.disk.Read(p)
	if err == io.EOF {
		d.stopped = true
		if ferr := d.finish(); ferr != nil {
			d.err = ferr
			return n, ferr
		}
	} else if err != nil {
		d.err = err
	}
	return n, err
}

// Done reports how many blob bytes were read so far.
func (d *Disk) Done() int64 { return d.read.Load() }

// Close releases the blobs (no verification).
func (d *Disk) Close() error {
	if !d.stopped {
		d.stopped = true
		_ = d.finish()
	}
	return nil
}

// Open resolves ref (an index to its platform's manifest), finds the
// disk in the manifest and opens it. Refusals: ErrNotFound (tag, digest
// or repository), ErrAuth, ErrRefused wrapping ocidisk.ErrNoDisk (what
// the manifest is instead), and anything else the registry answers.
func Open(ctx context.Context, ref name.Reference, o Options) (*Disk, error) {
	p, err := remote.NewPuller(o.remoteOptions()...)
	if err != nil {
		return nil, classify(err, ref.String())
	}
	desc, err := p.Get(ctx, ref)
	if err != nil {
		return nil, classify(err, fmt.Sprintf("%s in repository %s of registry %s", refName(ref), ref.Context().RepositoryStr(), ref.Context().RegistryStr()))
	}
	d := &Disk{read: &atomic.Int64{}}
	raw, mt := desc.Manifest, string(desc.MediaType)
	if ocidisk.IsIndex(mt) {
		ix, err := ocidisk.ParseIndex(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrRefused, ref, err)
		}
		want := o.Platform
		if want.OS == "" {
			want = ocidisk.DefaultPlatform
		}
		e, err := ocidisk.Select(ix, want)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrRefused, ref, err)
		}
		d.Platform = e.Platform.String()
		sub := ref.Context().Digest(e.Digest)
		desc, err = p.Get(ctx, sub)
		if err != nil {
			return nil, classify(err, "the "+d.Platform+" manifest "+e.Digest)
		}
		raw, mt = desc.Manifest, string(desc.MediaType)
	}
	if mt != ocidisk.MediaOCIManifest && mt != ocidisk.MediaDockerManifest {
		return nil, fmt.Errorf("%w: %s: %v: manifest media type %s", ErrRefused, ref, ocidisk.ErrNoDisk, mt)
	}
	m, err := ocidisk.ParseManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrRefused, ref, err)
	}
	plan, err := ocidisk.Classify(m)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrRefused, ref, err)
	}
	d.Manifest = ref.Context().Name() + "@" + desc.Digest.String()
	d.Kind, d.DiskType = plan.Kind, plan.DiskType
	for _, l := range plan.Layers {
		if o.MaxBlob > 0 && l.Size > o.MaxBlob {
			return nil, fmt.Errorf("%w: %s: layer %s is %d bytes, more than the %d-byte limit", ErrRefused, ref, l.Digest, l.Size, o.MaxBlob)
		}
		d.Total += l.Size
	}
	open := func(l ocidisk.Descriptor) (io.ReadCloser, error) {
		layer, err := p.Layer(ctx, ref.Context().Digest(l.Digest))
		if err != nil {
			return nil, classify(err, "blob "+l.Digest)
		}
		rc, err := layer.Compressed() // checked against l.Digest at its end
		if err != nil {
			return nil, classify(err, "blob "+l.Digest)
		}
		return &counted{rc: rc, n: d.read, digest: l.Digest, left: l.Size}, nil
	}
	if plan.Kind == ocidisk.Artifact {
		l := plan.Layers[0]
		rc, err := open(l)
		if err != nil {
			return nil, err
		}
		d.File = l.Annotations[ocidisk.AnnotationTitle]
		d.disk, d.finish = rc, rc.Close
		return d, nil
	}
	for _, l := range plan.Layers {
		rc, err := open(l)
		if err != nil {
			return nil, err
		}
		file, disk, release, err := ocidisk.DiskFile(rc)
		if errors.Is(err, ocidisk.ErrNotInLayer) {
			_, derr := io.Copy(io.Discard, rc) // a layer passed over is checked too
			release()
			rc.Close()
			if derr != nil {
				return nil, derr
			}
			continue
		}
		if err != nil {
			release()
			rc.Close()
			return nil, fmt.Errorf("%w: layer %s: %v", ErrRefused, l.Digest, err)
		}
		d.File, d.disk = file, disk
		d.finish = func() error {
			defer rc.Close()
			defer release()
			_, err := io.Copy(io.Discard, rc) // the rest of the blob, to its digest check
			return err
		}
		return d, nil
	}
	return nil, fmt.Errorf("%w: %s: %w: a container image without a disk/ file in any of its %d layers (not a containerDisk)",
		ErrRefused, ref, ocidisk.ErrNoDisk, len(plan.Layers))
}

func refName(ref name.Reference) string {
	if _, ok := ref.(name.Digest); ok {
		return "digest " + ref.Identifier()
	}
	return "tag " + ref.Identifier()
}

// counted counts a blob's bytes and names the blob in its errors (a
// digest mismatch among them).
type counted struct {
	rc     io.ReadCloser
	n      *atomic.Int64
	digest string
	left   int64 // the descriptor's size not read yet: a blob may not be longer
}

func (c *counted) Read(p []byte) (int, error) {
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.rc.Read(p)
	c.n.Add(int64(n))
	if c.left -= int64(n); c.left < 0 {
		return n, fmt.Errorf("%w: blob %s is longer than its descriptor says", ErrRefused, c.digest)
	}
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: blob %s: %v", ErrRefused, c.digest, err)
	}
	return n, err
}

func (c *counted) Close() error { return c.rc.Close() }

package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/metal-iaas/metal/internal/oci"
	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/metalapi"
	"github.com/metal-iaas/metal/pkg/ocidisk"
)

// source is an image being pulled for an import: its bytes, what it is,
// and how far the pull got.
type source struct {
	io.ReadCloser
	desc  string
	total int64
	done  func() int64
}

// openSource resolves an import's reference and opens the disk in it;
// every refusal (no such tag, no disk, credentials wanted, …) comes
// here, before a byte is stored.
func (s *Service) openSource(ctx context.Context, req metalapi.ImageImport) (*source, error) {
	if strings.HasPrefix(req.Ref, "https://") || strings.HasPrefix(req.Ref, "http://") {
		return s.openURL(ctx, req)
	}
	ref, err := oci.ParseRef(req.Ref, req.PlainHTTP)
	if err != nil {
		return nil, ociError(err)
	}
	o := s.cfg.OCI
	o.Username, o.Password, o.PlainHTTP = req.Username, req.Password, req.PlainHTTP
	o.MaxBlob = s.cfg.MaxUpload
	if req.Platform != "" {
		if o.Platform, err = ocidisk.ParsePlatform(req.Platform); err != nil {
			return nil, fmt.Errorf("%w: %v", inventory.ErrInvalid, err)
		}
	}
	d, err := oci.Open(ctx, ref, o)
	if err != nil {
		return nil, ociError(err)
	}
	desc := fmt.Sprintf("%s (%s", d.Manifest, d.Kind)
	if d.Platform != "" {
		desc += ", " + d.Platform
	}
	if d.File != "" {
		desc += ", " + d.File
	}
	return &source{ReadCloser: d, desc: desc + ")", total: d.Total, done: d.Done}, nil
}

// openURL opens a plain URL: https://, or http:// with PlainHTTP.
func (s *Service) openURL(ctx context.Context, req metalapi.ImageImport) (*source, error) {
	u, err := url.Parse(req.Ref)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%w: %q is not a URL", inventory.ErrInvalid, req.Ref)
	}
	if u.Scheme == "http" && !req.PlainHTTP {
		return nil, fmt.Errorf("%w: %s over plain HTTP refused: TLS is required unless plain_http (--plain-http) is given", inventory.ErrInvalid, u.Redacted())
	}
	if req.Username != "" || req.Password != "" {
		u.User = url.UserPassword(req.Username, req.Password)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", inventory.ErrInvalid, err)
	}
	client := &http.Client{Transport: s.cfg.OCI.Transport}
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: %v", inventory.ErrInvalid, u.Redacted(), errors.Unwrap(err))
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %s: 404 Not Found", inventory.ErrNotFound, u.Redacted())
	case resp.StatusCode != http.StatusOK:
		resp.Body.Close()
		return nil, fmt.Errorf("%w: GET %s: %s", inventory.ErrInvalid, u.Redacted(), resp.Status)
	}
	n := &atomic.Int64{}
	return &source{ReadCloser: &countingBody{ReadCloser: resp.Body, n: n}, desc: u.Redacted(),
		total: max(resp.ContentLength, 0), done: n.Load}, nil
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// ociError maps the registry client's refusals to the inventory's
// errors (and so to API statuses).
func ociError(err error) error {
	switch {
	case errors.Is(err, oci.ErrNotFound):
		return fmt.Errorf("%w: %v", inventory.ErrNotFound, err)
	case errors.Is(err, oci.ErrAuth), errors.Is(err, oci.ErrRefused):
		return fmt.Errorf("%w: %v", inventory.ErrInvalid, err)
	}
	return err
}

// invalidReader makes a pull's failure (a blob that does not match its
// digest, a broken connection) a refusal of the image.
type invalidReader struct{ r io.Reader }

func (i invalidReader) Read(p []byte) (int, error) {
	n, err := i.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: %w", inventory.ErrInvalid, err)
	}
	return n, err
}

// Import pulls req.Ref and stores it as name through Ingest.
func (s *Service) Import(ctx context.Context, name string, req metalapi.ImageImport) (inventory.Image, error) {
	src, err := s.openImport(ctx, name, req)
	if err != nil {
		return inventory.Image{}, err
	}
	return s.ingestSource(ctx, name, src)
}

// openImport checks an import before anything is pulled.
func (s *Service) openImport(ctx context.Context, name string, req metalapi.ImageImport) (*source, error) {
	if err := inventory.ValidateName("image name", name); err != nil {
		return nil, err
	}
	if req.Ref == "" {
		return nil, fmt.Errorf("%w: ref is required (oci://HOST/REPO:TAG or https://…)", inventory.ErrInvalid)
	}
	if _, err := s.Image(ctx, name); err == nil && !req.Replace {
		return nil, fmt.Errorf("%w: image %q already exists (import with replace to overwrite)", inventory.ErrConflict, name)
	}
	return s.openSource(ctx, req)
}

func (s *Service) ingestSource(ctx context.Context, name string, src *source) (inventory.Image, error) {
	defer src.Close()
	img, err := s.Ingest(ctx, name, invalidReader{src})
	if err != nil {
		return img, err
	}
	s.log.Info("image imported", "image", name, "from", src.desc, "pulled_bytes", src.done())
	return img, nil
}

// Export pushes a stored image to req.Ref as an OCI artifact.
func (s *Service) Export(ctx context.Context, name string, req metalapi.ImageExport) (metalapi.ImageExported, error) {
	img, err := s.Image(ctx, name)
	if err != nil {
		return metalapi.ImageExported{}, err
	}
	ref, err := oci.ParseRef(req.Ref, req.PlainHTTP)
	if err != nil {
		return metalapi.ImageExported{}, ociError(err)
	}
	file, err := s.openFile(ctx, img) // from the image store if it is not here
	if err != nil {
		return metalapi.ImageExported{}, err
	}
	file.Close()
	o := s.cfg.OCI
	o.Username, o.Password, o.PlainHTTP = req.Username, req.Password, req.PlainHTTP
	digest, err := oci.Push(ctx, ref, s.layerFile(img), manifestAnnotations(img), o)
	if err != nil {
		return metalapi.ImageExported{}, ociError(err)
	}
	s.log.Info("image exported", "image", name, "ref", ref.String(), "digest", digest)
	return metalapi.ImageExported{Ref: ref.String(), Digest: digest}, nil
}

// Annotations metald puts on the artifacts it pushes.
const (
	AnnotationRawSHA256   = "io.metal-iaas.image.raw-sha256"
	AnnotationVirtualSize = "io.metal-iaas.image.virtual-size"
	AnnotationChain       = "io.metal-iaas.image.chain"
	// AnnotationChunkSize and AnnotationChunkManifest record the image's
	// chunk manifest (its chunk size and digest) with its file in an
	// image store: another metald describes the file with that chunk
	// size and must find the same manifest.
	AnnotationChunkSize     = "io.metal-iaas.image.chunk-size"
	AnnotationChunkManifest = "io.metal-iaas.image.chunk-manifest"
)

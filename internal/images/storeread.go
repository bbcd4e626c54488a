package images

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/metal-iaas/metal/internal/oci"
	"github.com/metal-iaas/metal/pkg/imaging"
	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/ocidisk"
)

// AnnotationCreated is the manifest annotation of when the image was
// stored (RFC 3339), as the OCI image spec names it.
const AnnotationCreated = "org.opencontainers.image.created"

// maxChain bounds the format chain read from a store's annotation.
const maxChain = 8

// chainPart is one element of a format chain (qcow2, gzip, ova, …).
var chainPart = regexp.MustCompile(`^[a-z0-9]{1,16}$`)

// ErrNotLibrary: a tag of the image store that is not an image of the
// library (pushed by someone else into the prefix, or with annotations
// missing or malformed); it is skipped, never listed.
var ErrNotLibrary = errors.New("not an image of the library")

// fromStore reads the inventory record of a store's tag from the file's
// annotations (as storePut writes them), refusing what is missing,
// malformed or beyond this metald's bounds. Nothing is trusted for
// longer than the fetch: the file's digest is checked when it is
// fetched, its raw SHA-256 and virtual size when it is decoded
// (describe).
func (s *Service) fromStore(e oci.Entry) (inventory.Image, error) {
	img, err := s.readEntry(e)
	if err != nil {
		return inventory.Image{}, fmt.Errorf("%w: tag %q: %w", ErrNotLibrary, e.Image, err)
	}
	return img, nil
}

func (s *Service) readEntry(e oci.Entry) (inventory.Image, error) {
	if e.Err != nil {
		return inventory.Image{}, e.Err
	}
	if err := inventory.ValidateName("image name", e.Image); err != nil {
		return inventory.Image{}, err
	}
	a := e.File.Annotations
	sum, ok := strings.CutPrefix(e.File.Digest, "sha256:")
	if !ok || !imaging.IsDigest(sum) {
		return inventory.Image{}, fmt.Errorf("file digest %q is not sha256:<64 hex digits>", e.File.Digest)
	}
	if e.File.Size <= 0 || e.File.Size > s.cfg.MaxUpload {
		return inventory.Image{}, fmt.Errorf("file size %d is not within 1 byte and the %d-byte upload limit", e.File.Size, s.cfg.MaxUpload)
	}
	raw, ok := a[AnnotationRawSHA256]
	if !ok {
		return inventory.Image{}, fmt.Errorf("no %s annotation", AnnotationRawSHA256)
	}
	if !imaging.IsDigest(raw) {
		return inventory.Image{}, fmt.Errorf("%s %q is not 64 lower-case hex digits", AnnotationRawSHA256, clip(raw))
	}
	vs, err := s.virtualSize(a)
	if err != nil {
		return inventory.Image{}, err
	}
	format, chain, err := s.chain(a)
	if err != nil {
		return inventory.Image{}, err
	}
	if err := checkChunkAnnotations(a); err != nil {
		return inventory.Image{}, err
	}
	var created time.Time
	if c, ok := e.Annotations[AnnotationCreated]; ok {
		if created, err = time.Parse(time.RFC3339, c); err != nil {
			return inventory.Image{}, fmt.Errorf("%s %q is not an RFC 3339 time", AnnotationCreated, clip(c))
		}
	}
	return inventory.Image{Name: e.Image, File: e.Image + "." + format, Format: format, Chain: chain,
		Size: e.File.Size, VirtualSize: vs, SHA256: sum, RawSHA256: raw, CreatedAt: created}, nil
}

// virtualSize reads the virtual size annotation within --max-image-size.
func (s *Service) virtualSize(a map[string]string) (int64, error) {
	v, ok := a[AnnotationVirtualSize]
	if !ok {
		return 0, fmt.Errorf("no %s annotation", AnnotationVirtualSize)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s %q is not a positive number of bytes", AnnotationVirtualSize, clip(v))
	}
	limit := s.cfg.Imaging.MaxVirtualSize
	if limit <= 0 {
		limit = imaging.DefaultMaxVirtualSize
	}
	if n > limit {
		return 0, fmt.Errorf("%s %d exceeds this metald's %d-byte limit (--max-image-size)", AnnotationVirtualSize, n, limit)
	}
	return n, nil
}

// chain reads the format chain annotation (outermost first, its last
// element the disk type annotation), each element allowed here.
func (s *Service) chain(a map[string]string) (string, []string, error) {
	format, ok := a[ocidisk.AnnotationDiskType]
	if !ok {
		return "", nil, fmt.Errorf("no %s annotation", ocidisk.AnnotationDiskType)
	}
	c, ok := a[AnnotationChain]
	if !ok {
		return "", nil, fmt.Errorf("no %s annotation", AnnotationChain)
	}
	chain := strings.Split(c, "/")
	if len(chain) > maxChain {
		return "", nil, fmt.Errorf("%s has %d elements (at most %d)", AnnotationChain, len(chain), maxChain)
	}
	for _, p := range chain {
		if !chainPart.MatchString(p) {
			return "", nil, fmt.Errorf("%s %q: %q is not a format name", AnnotationChain, clip(c), clip(p))
		}
		if al := s.cfg.Imaging.Allowed; len(al) > 0 && !slices.Contains(al, p) && !(p == "vhd" && slices.Contains(al, "vpc")) {
			return "", nil, fmt.Errorf("format %s not allowed here (--image-formats %s)", p, strings.Join(al, ","))
		}
	}
	if chain[len(chain)-1] != format {
		return "", nil, fmt.Errorf("%s %q does not end in the %s %q", AnnotationChain, clip(c), ocidisk.AnnotationDiskType, clip(format))
	}
	return format, chain, nil
}

// checkChunkAnnotations accepts no chunk manifest, or a whole one: a
// chunk size as --chunk-size allows and a manifest digest.
func checkChunkAnnotations(a map[string]string) error {
	size, hasSize := a[AnnotationChunkSize]
	digest, hasDigest := a[AnnotationChunkManifest]
	if !hasSize && !hasDigest {
		return nil
	}
	n, err := strconv.ParseInt(size, 10, 64)
	if err != nil || n < 64<<10 || n > 1<<30 || n%4096 != 0 {
		return fmt.Errorf("%s %q is not a multiple of 4 KiB from 64 KiB to 1 GiB", AnnotationChunkSize, clip(size))
	}
	if !imaging.IsDigest(digest) {
		return fmt.Errorf("%s %q is not 64 lower-case hex digits", AnnotationChunkManifest, clip(digest))
	}
	return nil
}

// clip shortens what a hostile annotation may hold for a message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// The names this metald has seen in the store (storeSeenFile in the
// image directory): a record absent from the store is removed only if
// it was there once; an image that never was (uploaded before metald
// had --image-store) is kept.
const storeSeenFile = ".store-images.json"

// loadSeenLocked reads the file once (nameMu held); an unreadable one
// is as none: nothing is removed that was not seen again.
func (s *Service) loadSeenLocked() error {
	if s.sync.seen != nil {
		return nil
	}
	s.sync.seen = map[string]bool{}
	b, err := os.ReadFile(filepath.Join(s.cfg.Dir, storeSeenFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		s.log.Warn("image store: seen names unreadable, starting afresh", "file", storeSeenFile, "err", err)
		return nil
	}
	for _, n := range names {
		s.sync.seen[n] = true
	}
	return nil
}

// saveSeenLocked writes the file (nameMu held).
func (s *Service) saveSeenLocked() error {
	names := make([]string, 0, len(s.sync.seen))
	for n := range s.sync.seen {
		names = append(names, n)
	}
	slices.Sort(names)
	b, _ := json.Marshal(names)
	p := filepath.Join(s.cfg.Dir, storeSeenFile)
	if err := os.WriteFile(p+".tmp", b, 0o640); err != nil {
		return err
	}
	return os.Rename(p+".tmp", p)
}

// markSeen records that name is in the store (after its push).
func (s *Service) markSeen(name string) error {
	st := s.sync
	st.nameMu.Lock()
	defer st.nameMu.Unlock()
	if err := s.loadSeenLocked(); err != nil {
		return err
	}
	if st.seen[name] {
		return nil
	}
	st.seen[name] = true
	return s.saveSeenLocked()
}

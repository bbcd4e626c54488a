package imaging

import (
	"bytes"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/metal-iaas/metal/pkg/imaging/ovf"
)

// ovfErr maps an error of package ovf onto this package's sentinels,
// keeping both in the chain.
func ovfErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ovf.ErrRefused):
		return fmt.Errorf("%w: %w", ErrHostile, err)
	case errors.Is(err, ovf.ErrTooLarge):
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	case errors.Is(err, ovf.ErrUnsupported), errors.Is(err, ovf.ErrNoDisk):
		return fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	return fmt.Errorf("%w: %w", ErrCorrupt, err)
}

// pkgState is what the OVA and OVF-directory readers share: the parsed
// descriptor, the manifest (when seen), and the digests computed so far.
type pkgState struct {
	info    *PackageInfo
	disk    ovf.Disk
	man     *ovf.Manifest
	manRaw  []byte
	cert    *ovf.Certificate
	sums    map[string]map[string][]byte // member → algo → digest
	checked map[string]bool
}

func newPkgState(env *ovf.Envelope, opts Options) (*pkgState, error) {
	d, err := env.SelectDisk(opts.Disk)
	if err != nil {
		return nil, ovfErr(err)
	}
	if err := opts.checkSize("ovf", d.Capacity); err != nil {
		return nil, err
	}
	pi := &PackageInfo{OVFVersion: env.Version, Selected: d.ID, Manifest: "none"}
	for _, x := range env.Disks {
		pi.Disks = append(pi.Disks, PackageDisk{ID: x.ID, File: x.Href, Format: x.Format, Capacity: x.Capacity, Compression: x.Compression, ChunkSize: x.ChunkSize})
	}
	return &pkgState{info: pi, disk: d, sums: map[string]map[string][]byte{}, checked: map[string]bool{}}, nil
}

// memberHash hashes one member with the manifest's algorithm when the
// manifest is known, else with SHA1 and SHA256 (the algorithms OVF 1.x and
// 2.x manifests use) so a manifest that comes later can still be checked.
type memberHash struct {
	name   string
	hashes map[string]hash.Hash
	w      io.Writer
}

func (p *pkgState) newMemberHash(name string) *memberHash {
	algos := []string{"SHA1", "SHA256"}
	if p.man != nil {
		if a, _, ok := p.man.Digest(name); ok {
			algos = []string{strings.ToUpper(a)}
		}
	}
	m := &memberHash{name: name, hashes: map[string]hash.Hash{}}
	var ws []io.Writer
	for _, a := range algos {
		h, err := ovf.NewHash(a)
		if err != nil {
			continue
		}
		m.hashes[a] = h
		ws = append(ws, h)
	}
	m.w = io.MultiWriter(ws...)
	return m
}

// finish records the member's digests and checks them if the manifest is
// already known.
func (p *pkgState) finish(m *memberHash) error {
	s := map[string][]byte{}
	for a, h := range m.hashes {
		s[a] = h.Sum(nil)
	}
	p.sums[m.name] = s
	if p.man != nil {
		return p.check(m.name)
	}
	return nil
}

func (p *pkgState) check(name string) error {
	if p.checked[name] {
		return nil
	}
	a, _, ok := p.man.Digest(name)
	if !ok {
		p.info.Manifest = "mismatch"
		return fmt.Errorf("%w: the manifest does not list package member %q", ErrCorrupt, name)
	}
	got, ok := p.sums[name][strings.ToUpper(a)]
	if !ok {
		p.info.Manifest = "mismatch"
		return fmt.Errorf("%w: the manifest after member %q uses %s, which was not computed while it streamed past", ErrUnsupported, name, a)
	}
	if err := p.man.Check(name, a, got); err != nil {
		p.info.Manifest = "mismatch"
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	p.checked[name] = true
	return nil
}

// setManifest parses a manifest and checks every member seen so far.
func (p *pkgState) setManifest(raw []byte) error {
	m, err := ovf.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return ovfErr(err)
	}
	p.man, p.manRaw = m, raw
	p.info.Manifest = "pending"
	for name := range p.sums {
		if err := p.check(name); err != nil {
			return err
		}
	}
	return p.verifyCert()
}

func (p *pkgState) setCert(r io.Reader) error {
	c, err := ovf.ParseCertificate(r)
	if err != nil {
		return ovfErr(err)
	}
	p.cert = c
	return p.verifyCert()
}

func (p *pkgState) verifyCert() error {
	if p.cert == nil || p.man == nil {
		return nil
	}
	if err := p.cert.VerifySignature(p.manRaw); err != nil {
		p.info.Certificate = "invalid"
		return fmt.Errorf("%w: the certificate's signature over the manifest: %w", ErrCorrupt, err)
	}
	p.info.Certificate = fmt.Sprintf("signature valid, signer %q (not checked against a trust store)", p.cert.Subject)
	return nil
}

// streamInfo is the Info of a package's disk stream: the inner format's,
// with the package layers (container, then gzip when the disk file is
// compressed) in front of its chain and the package description attached.
func (st *pkgState) streamInfo(container string, in Info) Info {
	outer := []string{container}
	if st.disk.Compression == "gzip" {
		outer = append(outer, "gzip")
	}
	in.Chain = append(outer, in.Chain...)
	pi := *st.info
	in.Package = &pi
	return in
}

// checkExtent refuses an extent past the capacity the descriptor declares.
func (st *pkgState) checkExtent(e Extent) error {
	if e.Offset+e.Length > st.disk.Capacity {
		return fmt.Errorf("%w: disk %q extends past the descriptor's capacity of %d bytes", ErrCorrupt, st.disk.ID, st.disk.Capacity)
	}
	return nil
}

package imaging

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"

	"github.com/metal-iaas/metal/pkg/imaging/ovf"
)

// ovaStream reads an OVA: the descriptor must be the first member; the
// selected disk's member(s) are streamed through Open; every member is
// hashed as it passes and checked against the manifest whether the
// manifest comes before or after the disk. Members after the disk are read
// when the disk's stream ends, so a mismatch there (or an unsafe member)
// makes the final Next return an error wrapping ErrCorrupt (or ErrHostile)
// instead of io.EOF.
type ovaStream struct {
	st      *pkgState
	tr      *tar.Reader
	inner   Stream
	dr      *ovaDiskReader
	emitted int64
	err     error
}

func openOVA(r io.Reader, opts Options) (Stream, error) {
	tr := tar.NewReader(r)
	h, err := nextMember(tr)
	if err != nil {
		return nil, err
	}
	if h == nil || !strings.HasSuffix(strings.ToLower(ovf.MemberName(h)), ".ovf") {
		return nil, fmt.Errorf("%w: the first member of an OVA must be the .ovf descriptor", ErrCorrupt)
	}
	name := ovf.MemberName(h)
	var descRaw bytes.Buffer
	if _, err := io.Copy(&descRaw, io.LimitReader(tr, ovf.DefaultMaxDescriptorSize+1)); err != nil {
		return nil, fmt.Errorf("%w: OVA descriptor: %v", ErrTruncated, err)
	}
	env, err := ovf.ParseLimits(bytes.NewReader(descRaw.Bytes()), ovf.Limits{MaxCapacity: opts.MaxVirtualSize})
	if err != nil {
		return nil, ovfErr(err)
	}
	st, err := newPkgState(env, opts)
	if err != nil {
		return nil, err
	}
	mh := st.newMemberHash(name)
	mh.w.Write(descRaw.Bytes())
	if err := st.finish(mh); err != nil {
		return nil, err
	}
	o := &ovaStream{st: st, tr: tr}
	// Walk to the disk, reading the manifest, certificate and other
	// members on the way.
	first := st.disk.Href
	if st.disk.ChunkSize > 0 {
		first = ovf.ChunkName(st.disk.Href, 0)
	}
	for {
		h, err := nextMember(tr)
		if err != nil {
			return nil, err
		}
		if h == nil {
			return nil, fmt.Errorf("%w: the OVA has no member %q for disk %q", ErrCorrupt, first, st.disk.ID)
		}
		n := ovf.MemberName(h)
		if n == first {
			o.dr = &ovaDiskReader{o: o, hdr: h}
			break
		}
		if err := o.sideMember(h); err != nil {
			return nil, err
		}
	}
	var dr io.Reader = o.dr
	innerOpts := opts
	innerOpts.Disk = ""
	if st.disk.Compression == "gzip" {
		if err := opts.allow("gzip"); err != nil {
			return nil, err
		}
		zr, err := gzip.NewReader(dr)
		if err != nil {
			return nil, fmt.Errorf("%w: OVA disk %q: gzip: %v", ErrCorrupt, st.disk.Href, err)
		}
		dr = zr
	}
	inner, err := Open(dr, innerOpts)
	if err != nil {
		return nil, fmt.Errorf("OVA disk %q: %w", st.disk.Href, err)
	}
	if f := inner.Info().Format; f == "ova" || f == "ovf" {
		return nil, fmt.Errorf("%w: OVA disk %q is itself a package", ErrHostile, st.disk.Href)
	}
	if vs := inner.Info().VirtualSize; vs > st.disk.Capacity {
		return nil, fmt.Errorf("%w: disk %q holds %d bytes, more than the descriptor's capacity of %d", ErrCorrupt, st.disk.ID, vs, st.disk.Capacity)
	}
	o.inner = inner
	return o, nil
}

// nextMember returns the next tar member that carries a file, vetted; nil
// at the end of the archive.
func nextMember(tr *tar.Reader) (*tar.Header, error) {
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w: OVA tar stream: %v", ErrTruncated, err)
			}
			return nil, fmt.Errorf("%w: OVA tar stream: %v", ErrCorrupt, err)
		}
		if err := ovf.CheckTarHeader(h); err != nil {
			if errors.Is(err, ovf.ErrSkip) {
				continue
			}
			return nil, ovfErr(err)
		}
		return h, nil
	}
}

// sideMember consumes a member that is not the selected disk.
func (o *ovaStream) sideMember(h *tar.Header) error {
	n := ovf.MemberName(h)
	lower := strings.ToLower(n)
	switch {
	case strings.HasSuffix(lower, ".mf"):
		raw, err := io.ReadAll(io.LimitReader(o.tr, ovf.DefaultMaxManifestSize+1))
		if err != nil {
			return fmt.Errorf("%w: OVA manifest: %v", ErrTruncated, err)
		}
		return o.st.setManifest(raw)
	case strings.HasSuffix(lower, ".cert"):
		return o.st.setCert(o.tr)
	}
	mh := o.st.newMemberHash(n)
	if _, err := io.Copy(mh.w, o.tr); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: OVA member %q", ErrTruncated, n)
		}
		return err
	}
	return o.st.finish(mh)
}

func (o *ovaStream) Info() Info { return o.st.streamInfo("ova", o.inner.Info()) }

func (o *ovaStream) Next() (Extent, error) {
	if o.err != nil {
		return Extent{}, o.err
	}
	e, err := o.inner.Next()
	if err == nil {
		o.emitted = e.Offset + e.Length
		if o.err = o.st.checkExtent(e); o.err != nil {
			return Extent{}, o.err
		}
		return e, nil
	}
	if err != io.EOF {
		o.err = err
		return Extent{}, err
	}
	o.err = o.finish()
	if o.err == nil {
		o.err = io.EOF
	}
	return Extent{}, o.err
}

// finish drains the disk, reads the members after it and settles the
// manifest.
func (o *ovaStream) finish() error {
	if _, err := io.Copy(io.Discard, o.dr); err != nil {
		return err
	}
	for h := o.dr.next; ; {
		if h == nil {
			var err error
			if h, err = nextMember(o.tr); err != nil {
				return err
			}
			if h == nil {
				break
			}
		}
		if err := o.sideMember(h); err != nil {
			return err
		}
		h = nil
	}
	if o.st.man == nil {
		o.st.info.Manifest = "none"
		return nil
	}
	for name := range o.st.sums {
		if err := o.st.check(name); err != nil {
			return err
		}
	}
	o.st.info.Manifest = "verified"
	return nil
}

// ovaDiskReader reads the selected disk's member, or its chunks one after
// the other, hashing each member.
type ovaDiskReader struct {
	o     *ovaStream
	hdr   *tar.Header
	chunk int
	mh    *memberHash
	next  *tar.Header // the member after the disk, once seen
	done  bool
}

func (d *ovaDiskReader) Read(p []byte) (int, error) {
	for {
		if d.done {
			return 0, io.EOF
		}
		if d.mh == nil {
			d.mh = d.o.st.newMemberHash(ovf.MemberName(d.hdr))
		}
		n, err := d.o.tr.Read(p)
		if n > 0 {
			d.mh.w.Write(p[:n])
			return n, nil
		}
		if err == nil {
			continue
		}
		if err != io.EOF {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return 0, fmt.Errorf("%w: OVA member %q", ErrTruncated, d.hdr.Name)
			}
			return 0, err
		}
		if err := d.o.st.finish(d.mh); err != nil {
			return 0, err
		}
		d.mh = nil
		if d.o.st.disk.ChunkSize <= 0 {
			d.done = true
			continue
		}
		h, err := nextMember(d.o.tr)
		if err != nil {
			return 0, err
		}
		d.chunk++
		if h == nil || ovf.MemberName(h) != ovf.ChunkName(d.o.st.disk.Href, d.chunk) {
			d.next = h
			d.done = true
			continue
		}
		d.hdr = h
	}
}

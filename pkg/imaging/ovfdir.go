package imaging

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/gzip"

	"github.com/metal-iaas/metal/pkg/imaging/ovf"
)

// OpenOVFDir opens an unpacked OVF package: the directory holding exactly
// one .ovf descriptor and the files it references. Files are opened through
// an os.Root on dir, so no reference can leave it. The selected disk
// (opts.Disk) is streamed like an OVA's; the manifest (<name>.mf beside the
// descriptor), when present, is checked for the descriptor and every disk
// file read, and a mismatch makes the final Next fail with ErrCorrupt.
func OpenOVFDir(dir string, opts Options) (Stream, error) {
	opts = opts.withDefaults()
	if err := opts.allow("ovf"); err != nil {
		return nil, err
	}
	matches, err := filepath.Glob(filepath.Join(dir, "*.ovf"))
	if err != nil {
		return nil, err
	}
	if len(matches) != 1 {
		return nil, fmt.Errorf("%w: %s holds %d .ovf descriptors, want exactly one", ErrUnsupported, dir, len(matches))
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("imaging: %w", err)
	}
	descName := filepath.Base(matches[0])
	desc, err := readRootFile(root, descName, ovf.DefaultMaxDescriptorSize)
	if err != nil {
		root.Close()
		return nil, err
	}
	env, err := ovf.ParseLimits(bytes.NewReader(desc), ovf.Limits{MaxCapacity: opts.MaxVirtualSize})
	if err != nil {
		root.Close()
		return nil, ovfErr(err)
	}
	st, err := newPkgState(env, opts)
	if err != nil {
		root.Close()
		return nil, err
	}
	mh := st.newMemberHash(descName)
	mh.w.Write(desc)
	st.finish(mh) // checked once the manifest is known
	mfName := strings.TrimSuffix(descName, filepath.Ext(descName)) + ".mf"
	if raw, err := readRootFile(root, mfName, ovf.DefaultMaxManifestSize); err == nil {
		if err := st.setManifest(raw); err != nil {
			root.Close()
			return nil, err
		}
		certName := strings.TrimSuffix(mfName, ".mf") + ".cert"
		if f, err := root.Open(certName); err == nil {
			err = st.setCert(f)
			f.Close()
			if err != nil {
				root.Close()
				return nil, err
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		root.Close()
		return nil, err
	}
	d := &dirDiskReader{st: st, root: root}
	if st.disk.ChunkSize > 0 {
		for i := 0; ; i++ {
			n := ovf.ChunkName(st.disk.Href, i)
			if _, err := root.Stat(n); err != nil {
				if i == 0 {
					root.Close()
					return nil, fmt.Errorf("%w: chunk %q of disk %q: %v", ErrCorrupt, n, st.disk.ID, err)
				}
				break
			}
			d.names = append(d.names, n)
		}
	} else {
		d.names = []string{st.disk.Href}
	}
	var r io.Reader = d
	if st.disk.Compression == "gzip" {
		if err := opts.allow("gzip"); err != nil {
			root.Close()
			return nil, err
		}
		zr, err := gzip.NewReader(r)
		if err != nil {
			root.Close()
			return nil, fmt.Errorf("%w: OVF disk %q: gzip: %v", ErrCorrupt, st.disk.Href, err)
		}
		r = zr
	}
	innerOpts := opts
	innerOpts.Disk = ""
	inner, err := Open(r, innerOpts)
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("OVF disk %q: %w", st.disk.Href, err)
	}
	if vs := inner.Info().VirtualSize; vs > st.disk.Capacity {
		root.Close()
		return nil, fmt.Errorf("%w: disk %q holds %d bytes, more than the descriptor's capacity of %d", ErrCorrupt, st.disk.ID, vs, st.disk.Capacity)
	}
	return &ovfDirStream{st: st, inner: inner, d: d}, nil
}

func readRootFile(root *os.Root, name string, max int64) ([]byte, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrTooLarge, name, max)
	}
	return b, nil
}

// dirDiskReader concatenates the disk's file(s), hashing each.
type dirDiskReader struct {
	st    *pkgState
	root  *os.Root
	names []string
	i     int
	f     *os.File
	mh    *memberHash
}

func (d *dirDiskReader) Read(p []byte) (int, error) {
	for {
		if d.i >= len(d.names) {
			return 0, io.EOF
		}
		if d.f == nil {
			f, err := d.root.Open(d.names[d.i])
			if err != nil {
				return 0, fmt.Errorf("%w: OVF disk file: %v", ErrCorrupt, err)
			}
			if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
				f.Close()
				return 0, fmt.Errorf("%w: OVF disk file %q is not a regular file", ErrHostile, d.names[d.i])
			}
			d.f = f
			d.mh = d.st.newMemberHash(d.names[d.i])
		}
		n, err := d.f.Read(p)
		if n > 0 {
			d.mh.w.Write(p[:n])
			return n, nil
		}
		if err == nil {
			continue
		}
		if err != io.EOF {
			return 0, err
		}
		d.f.Close()
		d.f = nil
		if err := d.st.finish(d.mh); err != nil {
			return 0, err
		}
		d.i++
	}
}

type ovfDirStream struct {
	st    *pkgState
	inner Stream
	d     *dirDiskReader
	err   error
}

func (o *ovfDirStream) Info() Info { return o.st.streamInfo("ovf", o.inner.Info()) }

func (o *ovfDirStream) Next() (Extent, error) {
	if o.err != nil {
		return Extent{}, o.err
	}
	e, err := o.inner.Next()
	if err == nil {
		if err = o.st.checkExtent(e); err == nil {
			return e, nil
		}
	}
	if err == io.EOF {
		err = o.finish()
		if err == nil {
			err = io.EOF
		}
	}
	o.err = err
	if o.d.f != nil {
		o.d.f.Close()
	}
	o.d.root.Close()
	return Extent{}, err
}

func (o *ovfDirStream) finish() error {
	if _, err := io.Copy(io.Discard, o.d); err != nil {
		return err
	}
	if o.st.man == nil {
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

package imaging

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// maxWrappers bounds how many compression layers may be nested.
const maxWrappers = 4

// Open detects the format of r by its magic bytes (never by a name), peels
// off any compression layers, and returns the raw disk the innermost image
// describes. r is read strictly front to back and never seeked.
//
// An input that matches no known magic is raw. A fixed VHD carries its
// only footer at the end of the file, so like qemu-img's autodetection it
// is read as raw (the 512-byte footer is part of the output) unless
// opts.Format is "vhd" (qemu-img's "-f vpc"), which strips and checks the
// footer and applies the VHD size rules.
func Open(r io.Reader, opts Options) (Stream, error) {
	opts = opts.withDefaults()
	var chain []string
	var size int64 = -1
	probe := r
	if c, ok := r.(*CountingReader); ok {
		probe = c.r
	}
	if f, ok := probe.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			if off, err := f.Seek(0, io.SeekCurrent); err == nil {
				size = st.Size() - off
			}
		}
	}
	for depth := 0; ; depth++ {
		br := bufio.NewReaderSize(r, 1<<20)
		head, err := br.Peek(512)
		if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
			return nil, wrapperErr(chain, err)
		}
		kind := detect(head)
		if isWrapper(kind) {
			if depth >= maxWrappers {
				return nil, fmt.Errorf("%w: more than %d nested compression layers", ErrUnsupported, maxWrappers)
			}
			if err := opts.allow(kind); err != nil {
				return nil, err
			}
			chain = append(chain, kind)
			if kind == "xz" {
				if err := checkXZDictionary(br); err != nil {
					return nil, err
				}
			}
			r, err = unwrap(kind, br)
			if err != nil {
				return nil, fmt.Errorf("%w: %s stream: %v", ErrCorrupt, kind, err)
			}
			size = -1
			continue
		}
		if kind == "raw" && (opts.Format == "vhd" || opts.Format == "vpc") {
			kind = "vhd-fixed"
		}
		s, err := openFormat(kind, br, size, opts)
		if err != nil {
			return nil, err
		}
		return withChain(s, chain), nil
	}
}

func openFormat(kind string, br *bufio.Reader, size int64, opts Options) (Stream, error) {
	name := kind
	if kind == "vhd-fixed" {
		name = "vhd"
	}
	if err := opts.allow(name); err != nil {
		return nil, err
	}
	switch kind {
	case "qcow2":
		return openQcow2(br, opts)
	case "vmdk":
		return openVMDK(br, opts)
	case "vhd":
		return openVHD(br, opts)
	case "vhd-fixed":
		return openFixedVHD(br, size, opts)
	case "vhdx":
		return openVHDX(br, opts)
	case "ova":
		return openOVA(br, opts)
	case "ovf":
		return nil, fmt.Errorf("%w: a bare OVF descriptor names its disks as separate files; use OpenOVFDir on its directory", ErrUnsupported)
	case "vmdk-descriptor":
		return nil, fmt.Errorf("%w: a VMDK descriptor file refers to extents in other files; only self-contained monolithicSparse and streamOptimized VMDK are accepted", ErrHostile)
	}
	return openRaw(br, size, opts)
}

func isWrapper(kind string) bool {
	switch kind {
	case "gzip", "zstd", "xz", "bzip2":
		return true
	}
	return false
}

// detect names the format whose magic starts head.
func detect(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return "gzip"
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd"
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return "xz"
	case len(head) >= 4 && bytes.HasPrefix(head, []byte("BZh")) && head[3] >= '1' && head[3] <= '9':
		return "bzip2"
	case bytes.HasPrefix(head, []byte("QFI\xfb")):
		return "qcow2"
	case bytes.HasPrefix(head, []byte("KDMV")):
		return "vmdk"
	case bytes.HasPrefix(head, []byte("conectix")):
		return "vhd"
	case bytes.HasPrefix(head, []byte("vhdxfile")):
		return "vhdx"
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return "ova"
	}
	t := bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n")
	switch {
	case bytes.HasPrefix(t, []byte("<?xml")), bytes.HasPrefix(t, []byte("<Envelope")), bytes.HasPrefix(t, []byte("<ovf:Envelope")):
		return "ovf"
	case bytes.HasPrefix(t, []byte("# Disk DescriptorFile")):
		return "vmdk-descriptor"
	}
	return "raw"
}

func unwrap(kind string, r io.Reader) (io.Reader, error) {
	switch kind {
	case "gzip":
		return gzip.NewReader(r)
	case "zstd":
		return zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxDictionary))
	case "xz":
		return xz.NewReader(r)
	case "bzip2":
		return bzip2.NewReader(r), nil
	}
	return nil, fmt.Errorf("unknown wrapper %q", kind)
}

func (o Options) withDefaults() Options {
	if o.MaxVirtualSize <= 0 {
		o.MaxVirtualSize = DefaultMaxVirtualSize
	}
	if o.MaxBuffer <= 0 {
		o.MaxBuffer = DefaultMaxBuffer
	}
	return o
}

func (o Options) allow(format string) error {
	if len(o.Allowed) == 0 || slices.Contains(o.Allowed, format) {
		return nil
	}
	if format == "vhd" && slices.Contains(o.Allowed, "vpc") {
		return nil
	}
	return fmt.Errorf("%w: %s (allowed: %v)", ErrNotAllowed, format, o.Allowed)
}

// checkSize enforces MaxVirtualSize on a declared virtual size.
func (o Options) checkSize(format string, size int64) error {
	if size < 0 {
		return fmt.Errorf("%w: %s declares a negative virtual size", ErrCorrupt, format)
	}
	if size > o.MaxVirtualSize {
		return fmt.Errorf("%w: %s declares a virtual size of %d bytes, over the limit of %d (Options.MaxVirtualSize)", ErrTooLarge, format, size, o.MaxVirtualSize)
	}
	return nil
}

type chained struct {
	Stream
	outer []string
}

func withChain(s Stream, outer []string) Stream {
	if len(outer) == 0 {
		return s
	}
	return &chained{Stream: s, outer: outer}
}

func (c *chained) Info() Info {
	in := c.Stream.Info()
	in.Chain = append(slices.Clone(c.outer), in.Chain...)
	return in
}

// wrapperErr classifies a read error from inside compression layers.
func wrapperErr(chain []string, err error) error {
	if len(chain) == 0 || errors.Is(err, ErrTruncated) {
		return fmt.Errorf("imaging: reading image header: %w", err)
	}
	layer := chain[len(chain)-1]
	switch {
	case errors.Is(err, zstd.ErrWindowSizeExceeded):
		return fmt.Errorf("%w: zstd window larger than the %d bytes accepted", ErrUnsupported, maxDictionary)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %s stream ends early", ErrTruncated, layer)
	}
	return fmt.Errorf("%w: %s stream: %v", ErrCorrupt, layer, err)
}

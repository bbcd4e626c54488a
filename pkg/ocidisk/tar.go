package ocidisk

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// ErrNotInLayer: a layer has no file under disk/.
var ErrNotInLayer = errors.New("no disk/ file in the layer")

// DiskFile finds the disk of a containerDisk layer: r is the layer blob
// (a tar, plain, gzip or zstd — found by magic, whatever the media type
// says); it returns the name and a reader of the first regular file
// under disk/ (KubeVirt's rule), positioned at its start. The reader's
// EOF is the file's end; the caller drains the blob afterwards. A
// directory, link or device under disk/ is passed over. release frees
// the decompressor; it is to be called once the layer is drained, found
// or not.
func DiskFile(r io.Reader) (name string, disk io.Reader, release func(), err error) {
	tr, release, err := tarOf(r)
	if err != nil {
		return "", nil, func() {}, err
	}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return "", nil, release, ErrNotInLayer
		}
		if err != nil {
			return "", nil, release, fmt.Errorf("layer tar: %w", err)
		}
		p := path.Clean(strings.TrimPrefix(h.Name, "/"))
		p = strings.TrimPrefix(p, "./")
		if dir, _ := path.Split(p); dir != "disk/" {
			continue
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		return p, tr, release, nil
	}
}

// tarOf undoes a layer's compression, by magic.
func tarOf(r io.Reader) (*tar.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, func() {}, fmt.Errorf("layer gzip: %w", err)
		}
		return tar.NewReader(zr), func() {}, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return nil, func() {}, fmt.Errorf("layer zstd: %w", err)
		}
		return tar.NewReader(zr), zr.Close, nil
	}
	return tar.NewReader(br), func() {}, nil
}

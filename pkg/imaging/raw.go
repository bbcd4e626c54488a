package imaging

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

const (
	rawChunk    = 4 << 20
	zeroGranule = 4096
)

var rawPool = sync.Pool{New: func() any { b := make([]byte, rawChunk); return &b }}

// zeroBlock is a read-only block of zeros for comparisons and hashing.
var zeroBlock = make([]byte, 1<<20)

func isZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroBlock))
		if !bytes.Equal(b[:n], zeroBlock[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// rawStream reads a raw disk in chunks and reports all-zero runs (at 4 KiB
// granularity) as KindZero. With holdback > 0 it keeps the last holdback
// bytes of the input back and hands them to atEnd instead (fixed VHD).
type rawStream struct {
	info     Info
	r        io.Reader
	buf      []byte
	n        int // valid bytes in buf
	q        []Extent
	off      int64
	eof      bool
	holdback int
	pending  []byte
	ref      *refBuf // the stream's reference to buf
	atEnd    func(tail []byte, dataLen int64) error
	err      error
}

func openRaw(r io.Reader, size int64, opts Options) (Stream, error) {
	if size >= 0 {
		if err := opts.checkSize("raw", size); err != nil {
			return nil, err
		}
	}
	s := &rawStream{
		info: Info{Format: "raw", Chain: []string{"raw"}, VirtualSize: size},
		r:    r,
	}
	s.atEnd = func(_ []byte, n int64) error {
		if size >= 0 && n != size {
			return fmt.Errorf("%w: raw input ended after %d of %d bytes", ErrTruncated, n, size)
		}
		return nil
	}
	return &sizeLimited{Stream: s, max: opts.MaxVirtualSize}, nil
}

func (s *rawStream) Info() Info { return s.info }

func (s *rawStream) Next() (Extent, error) {
	for len(s.q) == 0 {
		if s.err != nil {
			return Extent{}, s.err
		}
		if s.eof {
			s.err = io.EOF
			return Extent{}, io.EOF
		}
		if err := s.fill(); err != nil {
			s.err = err
			return Extent{}, err
		}
	}
	e := s.q[0]
	s.q = s.q[1:]
	return e, nil
}

// fill reads the next chunk and queues its extents.
func (s *rawStream) fill() error {
	// Each chunk gets a pooled buffer that Write may borrow; the stream's
	// own reference to the previous one ends here, after its held-back
	// tail has been copied to the front of the new one.
	nb := rawPool.Get().(*[]byte)
	s.n = copy(*nb, s.pending)
	s.pending = nil
	if s.ref != nil {
		s.ref.release()
	}
	s.buf = *nb
	s.ref = &refBuf{b: nb, pool: &rawPool}
	s.ref.retain(1)
	want := len(s.buf)
	m, err := io.ReadFull(s.r, s.buf[s.n:want])
	s.n += m
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		s.eof = true
	} else if err != nil {
		return err
	}
	emit := s.n
	if !s.eof {
		emit = s.n - s.holdback
	} else if s.holdback > 0 {
		if s.n < s.holdback {
			return fmt.Errorf("%w: input shorter than its %d-byte trailer", ErrTruncated, s.holdback)
		}
		emit = s.n - s.holdback
	}
	// Emit in whole zero granules except at EOF.
	data := s.buf[:emit]
	if !s.eof {
		data = data[:len(data)/zeroGranule*zeroGranule]
	}
	s.queue(data)
	used := len(data)
	if s.eof {
		if s.atEnd != nil {
			if err := s.atEnd(s.buf[emit:s.n], s.off); err != nil {
				return err
			}
		}
		return nil
	}
	// fill runs only when the caller has come back for more, so the
	// extents of the previous chunk are no longer valid and the buffer
	// can be reused; queued extents of this chunk are served before the
	// next fill.
	s.pending = s.buf[used:s.n]
	return nil
}

func (s *rawStream) queue(data []byte) {
	for len(data) > 0 {
		n := min(len(data), zeroGranule)
		z := isZero(data[:n])
		k := KindData
		if z {
			k = KindZero
		}
		if l := len(s.q); l > 0 && s.q[l-1].Kind == k && s.q[l-1].Offset+s.q[l-1].Length == s.off {
			s.q[l-1].Length += int64(n)
			if k == KindData {
				p := s.q[l-1].Data
				s.q[l-1].Data = p[:len(p)+n]
			}
		} else {
			e := Extent{Offset: s.off, Length: int64(n), Kind: k, buf: s.ref}
			if k == KindData {
				e.Data = data[:n:len(data)]
			}
			s.q = append(s.q, e)
		}
		s.off += int64(n)
		data = data[n:]
	}
}

// sizeLimited fails a stream of unknown size once it passes max.
type sizeLimited struct {
	Stream
	max int64
}

func (s *sizeLimited) Next() (Extent, error) {
	e, err := s.Stream.Next()
	if err == nil && e.Offset+e.Length > s.max {
		return Extent{}, fmt.Errorf("%w: raw input longer than %d bytes (Options.MaxVirtualSize)", ErrTooLarge, s.max)
	}
	return e, err
}

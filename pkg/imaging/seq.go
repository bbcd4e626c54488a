package imaging

import (
	"errors"
	"fmt"
	"io"
	"sort"
)

// seqReader gives a format reader "random" access to an image that can only
// be read front to back. Reading at or after the current position skips
// forward; every byte skipped over is offered to classify, and the ranges it
// wants kept go to an in-memory cache bounded by limit. Reading before the
// current position is served from that cache and consumes what it reads.
//
// This is how the table-driven formats (qcow2, monolithicSparse VMDK,
// dynamic VHD, VHDX) cope with data that precedes the table mapping it or
// that lies in the file in an order other than the guest order.
type seqReader struct {
	r        io.Reader
	pos      int64
	pieces   []piece // sorted by off, non-overlapping
	buffered int64
	limit    int64
	// classify reports whether the byte at off must be kept if skipped,
	// and the end of the range (> off) that decision holds for.
	classify func(off int64) (keep bool, end int64)
	scratch  []byte
}

type piece struct {
	off  int64
	data []byte
}

func newSeqReader(r io.Reader, start, limit int64) *seqReader {
	return &seqReader{r: r, pos: start, limit: limit}
}

// errConsumed means a range was needed a second time after the reader had
// passed it without keeping it.
var errConsumed = errors.New("range already consumed")

// skipTo advances the position to off, keeping what classify asks for.
func (s *seqReader) skipTo(off int64) error {
	for s.pos < off {
		keep, end := true, off
		if s.classify != nil {
			keep, end = s.classify(s.pos)
			if end <= s.pos {
				end = s.pos + 1
			}
		}
		if end > off {
			end = off
		}
		n := end - s.pos
		if !keep {
			if s.scratch == nil {
				s.scratch = make([]byte, 256<<10)
			}
			for n > 0 {
				c := min(n, int64(len(s.scratch)))
				if err := readFull(s.r, s.scratch[:c]); err != nil {
					return s.skipErr(err, off)
				}
				n -= c
				s.pos += c
			}
			continue
		}
		for n > 0 {
			c := min(n, 4<<20)
			if s.buffered+c > s.limit {
				return fmt.Errorf("%w: data at offset %d is needed out of order and the buffer bound of %d bytes (Options.MaxBuffer) is exhausted", ErrBufferLimit, s.pos, s.limit)
			}
			b := make([]byte, c)
			if err := readFull(s.r, b); err != nil {
				return s.skipErr(err, off)
			}
			s.pieces = append(s.pieces, piece{off: s.pos, data: b})
			s.buffered += c
			s.pos += c
			n -= c
		}
	}
	return nil
}

func (s *seqReader) skipErr(err error, to int64) error {
	if errors.Is(err, ErrTruncated) {
		return fmt.Errorf("%w: input ends before offset %d (read up to %d)", ErrTruncated, to, s.pos)
	}
	return err
}

// readAt fills b with the image bytes at off.
func (s *seqReader) readAt(off int64, b []byte) error {
	_, err := s.readAtMost(off, b, false)
	return err
}

// readAtMost is readAt that, with short set, tolerates the input ending
// inside the range and returns how many bytes it got.
func (s *seqReader) readAtMost(off int64, b []byte, short bool) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: negative offset", ErrCorrupt)
	}
	got := 0
	if off < s.pos {
		n := min(int64(len(b)), s.pos-off)
		if err := s.fromCache(off, b[:n]); err != nil {
			return 0, err
		}
		got = int(n)
		off += n
		b = b[n:]
	}
	if len(b) == 0 {
		return got, nil
	}
	if err := s.skipTo(off); err != nil {
		return got, err
	}
	n, err := io.ReadFull(s.r, b)
	s.pos += int64(n)
	got += n
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			if short {
				return got, nil
			}
			return got, fmt.Errorf("%w: input ends at offset %d, inside a range the image maps", ErrTruncated, s.pos)
		}
		return got, err
	}
	return got, nil
}

// fromCache copies [off, off+len(b)) out of the cache and drops it there.
func (s *seqReader) fromCache(off int64, b []byte) error {
	end := off + int64(len(b))
	i := sort.Search(len(s.pieces), func(i int) bool {
		p := s.pieces[i]
		return p.off+int64(len(p.data)) > off
	})
	cur := off
	for cur < end {
		if i >= len(s.pieces) || s.pieces[i].off > cur {
			return fmt.Errorf("%w: the image needs bytes at offset %d again after they were passed (out-of-order layout not supported)", ErrUnsupported, cur)
		}
		p := s.pieces[i]
		pend := p.off + int64(len(p.data))
		c := min(end, pend) - cur
		copy(b[cur-off:], p.data[cur-p.off:cur-p.off+c])
		// Drop the consumed part of the piece.
		switch {
		case cur == p.off && cur+c == pend:
			s.pieces = append(s.pieces[:i], s.pieces[i+1:]...)
		case cur == p.off:
			s.pieces[i] = piece{off: cur + c, data: p.data[c:]}
			i++
		case cur+c == pend:
			s.pieces[i].data = p.data[:cur-p.off]
			i++
		default:
			tail := piece{off: cur + c, data: p.data[cur-p.off+c:]}
			s.pieces[i].data = p.data[:cur-p.off]
			s.pieces = append(s.pieces, piece{})
			copy(s.pieces[i+2:], s.pieces[i+1:])
			s.pieces[i+1] = tail
			i += 2
		}
		s.buffered -= c
		cur += c
	}
	return nil
}

// putBack returns bytes just read to the cache, for a read that may have
// overshot into a range something else still needs.
func (s *seqReader) putBack(off int64, b []byte) {
	if len(b) == 0 {
		return
	}
	i := sort.Search(len(s.pieces), func(i int) bool { return s.pieces[i].off >= off })
	if i > 0 {
		p := s.pieces[i-1]
		if p.off+int64(len(p.data)) > off {
			return // already cached
		}
	}
	if i < len(s.pieces) && s.pieces[i].off < off+int64(len(b)) {
		return
	}
	c := append([]byte(nil), b...)
	s.pieces = append(s.pieces, piece{})
	copy(s.pieces[i+1:], s.pieces[i:])
	s.pieces[i] = piece{off: off, data: c}
	s.buffered += int64(len(c))
}

// drop discards cached bytes for which keep reports false.
func (s *seqReader) drop(keep func(off int64) (bool, int64)) {
	out := s.pieces[:0]
	for _, p := range s.pieces {
		pend := p.off + int64(len(p.data))
		for cur := p.off; cur < pend; {
			k, e := keep(cur)
			if e <= cur {
				e = cur + 1
			}
			e = min(e, pend)
			if k {
				out = append(out, piece{off: cur, data: p.data[cur-p.off : e-p.off]})
			} else {
				s.buffered -= e - cur
			}
			cur = e
		}
	}
	for i := len(out); i < len(s.pieces); i++ {
		s.pieces[i] = piece{}
	}
	s.pieces = out
}

// drain reads the input to its end, discarding it, so trailing garbage and
// trailing truncation are seen. It returns the total input length.
func (s *seqReader) drain() (int64, error) {
	n, err := io.Copy(io.Discard, s.r)
	s.pos += n
	return s.pos, err
}

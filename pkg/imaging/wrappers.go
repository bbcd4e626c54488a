package imaging

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
)

// maxDictionary bounds the window a compression layer may demand: a zstd
// window or an xz/LZMA2 dictionary is allocated up front, so a hostile
// header could otherwise ask for gigabytes. 128 MiB is what the zstd tool
// accepts by default and twice what `xz -9` uses.
const maxDictionary = 128 << 20

// checkXZDictionary reads the LZMA2 dictionary size from the first block
// header of an xz stream (peeked, not consumed) and refuses one above
// maxDictionary.
func checkXZDictionary(br *bufio.Reader) error {
	head, err := br.Peek(12 + 1024 + 4)
	if len(head) < 14 {
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return nil // the decoder reports the short stream
		}
	}
	b := head[12:]
	if b[0] == 0 {
		return nil // no block: an index follows
	}
	size := (int(b[0]) + 1) * 4
	if len(b) < size {
		return nil
	}
	b = b[1:size]
	flags := b[0]
	b = b[1:]
	varint := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	if flags&0x40 != 0 {
		if _, ok := varint(); !ok {
			return nil
		}
	}
	if flags&0x80 != 0 {
		if _, ok := varint(); !ok {
			return nil
		}
	}
	for range int(flags&3) + 1 {
		id, ok := varint()
		if !ok {
			return nil
		}
		n, ok := varint()
		if !ok || uint64(len(b)) < n {
			return nil
		}
		props := b[:n]
		b = b[n:]
		if id == 0x21 && n == 1 {
			d := props[0]
			if d > 40 {
				return nil
			}
			var dict uint64 = 0xffffffff
			if d < 40 {
				dict = uint64(2|(d&1)) << (d/2 + 11)
			}
			if dict > maxDictionary {
				return fmt.Errorf("%w: xz dictionary of %d bytes, more than the %d accepted", ErrUnsupported, dict, maxDictionary)
			}
		}
	}
	return nil
}

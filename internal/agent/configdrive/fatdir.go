package configdrive

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
)

// Directory entries: VFAT long names (UTF-16, 13 characters an entry)
// before a unique 8.3 short name, as Linux's vfat and mtools read them.

// shortNames gives every child of n a unique 8.3 name ("META-D~1   ").
func shortNames(n *fatNode) [][11]byte {
	out := make([][11]byte, len(n.children))
	taken := map[[11]byte]bool{}
	for i, ch := range n.children {
		if s, ok := exactShort(ch.name); ok && !taken[s] {
			out[i] = s
			taken[s] = true
			continue
		}
		base, ext := ch.name, ""
		if j := strings.LastIndexByte(ch.name, '.'); j > 0 {
			base, ext = ch.name[:j], ch.name[j+1:]
		}
		b, e := shortChars(base, 6), shortChars(ext, 3)
		if b == "" {
			b = "FILE"
		}
		for k := 1; ; k++ {
			tail := fmt.Sprintf("~%d", k)
			var s [11]byte
			copy(s[:], fmt.Sprintf("%-8s%-3s", b[:min(len(b), 8-len(tail))]+tail, e))
			if !taken[s] {
				out[i] = s
				taken[s] = true
				break
			}
		}
	}
	return out
}

// exactShort is name as an 8.3 entry when it is one already (upper
// case, valid characters), in which case no long name is needed.
func exactShort(name string) ([11]byte, bool) {
	var s [11]byte
	base, ext, _ := strings.Cut(name, ".")
	if base == "" || len(base) > 8 || len(ext) > 3 || strings.Contains(ext, ".") ||
		shortChars(base, 8) != base || shortChars(ext, 3) != ext {
		return s, false
	}
	copy(s[:], fmt.Sprintf("%-8s%-3s", base, ext))
	return s, true
}

// shortChars keeps up to n characters valid in a short name, upper-cased.
func shortChars(s string, n int) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		if b.Len() == n {
			break
		}
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || strings.ContainsRune("!#$%&'()-@^_`{}~", r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func lfnCount(name string) int {
	if _, ok := exactShort(name); ok {
		return 0
	}
	return (len(utf16.Encode([]rune(name))) + 12) / 13
}

// dirBytes is the size of n's entries: "." and ".." (or the volume
// label in the root), each child's long-name entries and short entry,
// and an end marker.
func dirBytes(n *fatNode) int {
	k := 2
	for _, ch := range n.children {
		k += lfnCount(ch.name) + 1
	}
	return (k + 1) * dirEntry
}

func dosTime(t time.Time) (date, clock uint16) {
	if t.Year() < 1980 {
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	date = uint16((t.Year()-1980)<<9 | int(t.Month())<<5 | t.Day())
	clock = uint16(t.Hour()<<11 | t.Minute()<<5 | t.Second()/2)
	return date, clock
}

func shortEntry(name [11]byte, attr byte, cluster, size uint32, now time.Time) []byte {
	e := make([]byte, dirEntry)
	copy(e, name[:])
	e[11] = attr
	date, clock := dosTime(now)
	le := binary.LittleEndian
	for _, o := range []int{14, 22} { // created, modified
		le.PutUint16(e[o:], clock)
		le.PutUint16(e[o+2:], date)
	}
	le.PutUint16(e[18:], date) // accessed
	le.PutUint16(e[20:], uint16(cluster>>16))
	le.PutUint16(e[26:], uint16(cluster))
	le.PutUint32(e[28:], size)
	return e
}

// lfnEntries are name's long-name entries, last part first.
func lfnEntries(name string, short [11]byte) []byte {
	var sum byte
	for _, c := range short {
		sum = (sum>>1 | sum<<7) + c
	}
	u := utf16.Encode([]rune(name))
	n := (len(u) + 12) / 13
	padded := make([]uint16, n*13)
	for i := range padded {
		switch {
		case i < len(u):
			padded[i] = u[i]
		case i == len(u):
			padded[i] = 0
		default:
			padded[i] = 0xffff
		}
	}
	out := make([]byte, 0, n*dirEntry)
	for seq := n; seq >= 1; seq-- {
		e := make([]byte, dirEntry)
		e[0] = byte(seq)
		if seq == n {
			e[0] |= 0x40
		}
		e[11], e[13] = attrLFN, sum
		part := padded[(seq-1)*13 : seq*13]
		offs := []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30}
		for i, o := range offs {
			binary.LittleEndian.PutUint16(e[o:], part[i])
		}
		out = append(out, e...)
	}
	return out
}

// dirData is the directory n's content; parent is nil for the root.
func dirData(n, parent *fatNode, label string, now time.Time) []byte {
	var b []byte
	if parent == nil {
		var l [11]byte
		copy(l[:], fmt.Sprintf("%-11s", label))
		b = append(b, shortEntry(l, attrVolume, 0, 0, now)...)
	} else {
		dot, dotdot := [11]byte{'.', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}, [11]byte{'.', '.', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}
		up := parent.cluster
		if parent.name == "" { // the root is cluster 0 in ".."
			up = 0
		}
		b = append(b, shortEntry(dot, attrDir, n.cluster, 0, now)...)
		b = append(b, shortEntry(dotdot, attrDir, up, 0, now)...)
	}
	for i, s := range shortNames(n) {
		ch := n.children[i]
		if lfnCount(ch.name) > 0 {
			b = append(b, lfnEntries(ch.name, s)...)
		}
		attr, size := byte(attrArchive), uint32(len(ch.data))
		if ch.dir {
			attr, size = attrDir, 0
		}
		b = append(b, shortEntry(s, attr, ch.cluster, size, now)...)
	}
	return b
}

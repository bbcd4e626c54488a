package configdrive

import (
	"encoding/binary"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"
)

// The FAT32 writer. A config drive is written once, with every file known
// up front, so the layout is fixed: one cluster per sector, the root
// directory at cluster 2, then each directory and file in contiguous
// clusters. go-diskfs's FAT32 writer was tried first and left out: its
// FATs are two entries short for some sizes (Linux refuses to mount
// them), subdirectories get a wrong "..", and empty files a cluster —
// fsck.fat flags all three (v1.9.4).

const (
	fatReserved  = 32 // boot sector, FSInfo, their backups at 6 and 7
	fatCount     = 2
	fat32MinClus = 65525
	dirEntry     = 32
	attrVolume   = 0x08
	attrDir      = 0x10
	attrArchive  = 0x20
	attrLFN      = 0x0f
	eoc          = 0x0fffffff
)

// fatNode is a file or directory to lay out.
type fatNode struct {
	name     string
	dir      bool
	data     []byte
	children []*fatNode
	cluster  uint32 // first cluster, 0 for an empty file
	clusters uint32
}

// tree builds the directory tree of files (paths already validated).
func tree(files map[string][]byte) *fatNode {
	root := &fatNode{dir: true}
	dirs := map[string]*fatNode{"": root}
	var mkdir func(p string) *fatNode
	mkdir = func(p string) *fatNode {
		if n, ok := dirs[p]; ok {
			return n
		}
		parent := mkdir(strings.TrimSuffix(path.Dir(p), "."))
		n := &fatNode{name: path.Base(p), dir: true}
		parent.children = append(parent.children, n)
		dirs[p] = n
		return n
	}
	names := make([]string, 0, len(files))
	for p := range files {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		parent := mkdir(strings.TrimSuffix(path.Dir(p), "."))
		parent.children = append(parent.children, &fatNode{name: path.Base(p), data: files[p]})
	}
	return root
}

// writeFAT32 formats size bytes at off of w as FAT32 labelled label with
// files; hidden is the partition's first sector (BPB hidden sectors).
func writeFAT32(w io.WriterAt, off, size int64, hidden uint32, label string, files map[string][]byte, now time.Time) error {
	total := uint32(size / sector)
	// The smallest FAT that maps every cluster plus the two reserved
	// entries.
	fatSz := uint32(1)
	for fatSz*(sector/4) < total-fatReserved-fatCount*fatSz+2 {
		fatSz++
	}
	nclus := total - fatReserved - fatCount*fatSz
	if nclus < fat32MinClus {
		return fmt.Errorf("%d bytes give %d clusters, FAT32 needs %d", size, nclus, fat32MinClus)
	}
	root := tree(files)
	next := uint32(2)
	fat := make([]uint32, nclus+2)
	fat[0], fat[1] = 0x0ffffff8, eoc
	var alloc func(n *fatNode) error
	alloc = func(n *fatNode) error {
		var bytes int
		if n.dir {
			bytes = dirBytes(n)
		} else {
			bytes = len(n.data)
		}
		n.clusters = uint32((bytes + sector - 1) / sector)
		if n.clusters > 0 {
			if next+n.clusters > nclus+2 {
				return fmt.Errorf("the files need more than %d clusters", nclus)
			}
			n.cluster = next
			for c := next; c < next+n.clusters-1; c++ {
				fat[c] = c + 1
			}
			fat[next+n.clusters-1] = eoc
			next += n.clusters
		}
		for _, ch := range n.children {
			if err := alloc(ch); err != nil {
				return err
			}
		}
		return nil
	}
	if err := alloc(root); err != nil {
		return err
	}
	dataStart := off + int64(fatReserved+fatCount*fatSz)*sector
	clusterOff := func(c uint32) int64 { return dataStart + int64(c-2)*sector }

	boot := bootSector(total, fatSz, hidden, label, uint32(now.Unix()))
	info := fsInfo(nclus+2-next, next)
	for _, s := range []struct {
		b   []byte
		lba int64
	}{{boot, 0}, {info, 1}, {boot, 6}, {info, 7}} {
		if _, err := w.WriteAt(s.b, off+s.lba*sector); err != nil {
			return err
		}
	}
	fb := make([]byte, int(fatSz)*sector)
	for i, v := range fat {
		binary.LittleEndian.PutUint32(fb[4*i:], v)
	}
	for i := range int64(fatCount) {
		if _, err := w.WriteAt(fb, off+(fatReserved+i*int64(fatSz))*sector); err != nil {
			return err
		}
	}
	var emit func(n, parent *fatNode) error
	emit = func(n, parent *fatNode) error {
		if n.clusters == 0 {
			return nil
		}
		buf := n.data
		if n.dir {
			buf = dirData(n, parent, label, now)
		}
		full := make([]byte, int(n.clusters)*sector)
		copy(full, buf)
		if _, err := w.WriteAt(full, clusterOff(n.cluster)); err != nil {
			return err
		}
		for _, ch := range n.children {
			if err := emit(ch, n); err != nil {
				return err
			}
		}
		return nil
	}
	return emit(root, nil)
}

func bootSector(total, fatSz, hidden uint32, label string, serial uint32) []byte {
	b := make([]byte, sector)
	copy(b, []byte{0xeb, 0x58, 0x90})
	copy(b[3:11], "METAL   ")
	le := binary.LittleEndian
	le.PutUint16(b[11:], sector)
	b[13] = 1 // sectors per cluster
	le.PutUint16(b[14:], fatReserved)
	b[16] = fatCount
	b[21] = 0xf8 // fixed disk
	le.PutUint16(b[24:], 63)
	le.PutUint16(b[26:], 255)
	le.PutUint32(b[28:], hidden)
	le.PutUint32(b[32:], total)
	le.PutUint32(b[36:], fatSz)
	le.PutUint32(b[44:], 2) // root directory cluster
	le.PutUint16(b[48:], 1) // FSInfo sector
	le.PutUint16(b[50:], 6) // backup boot sector
	b[64] = 0x80
	b[66] = 0x29
	le.PutUint32(b[67:], serial)
	copy(b[71:82], fmt.Sprintf("%-11s", label))
	copy(b[82:90], "FAT32   ")
	b[510], b[511] = 0x55, 0xaa
	return b
}

func fsInfo(free, next uint32) []byte {
	b := make([]byte, sector)
	le := binary.LittleEndian
	le.PutUint32(b[0:], 0x41615252)
	le.PutUint32(b[484:], 0x61417272)
	le.PutUint32(b[488:], free)
	le.PutUint32(b[492:], next)
	le.PutUint32(b[508:], 0xaa550000)
	return b
}

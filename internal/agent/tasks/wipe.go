package tasks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

// WipeSpan is how much is zeroed at each end of the disk and of every
// partition: it covers MBR, GPT and its backup, and the signature areas of
// common filesystems, LVM, md and ZFS labels.
const WipeSpan = 1 << 20

// Range is a byte range [Off, Off+Len).
type Range struct{ Off, Len int64 }

// Partition is one partition of a disk, in bytes.
type Partition struct {
	Name       string
	Start, Len int64
}

// Partitions reads /sys/block/<disk>/<part>/{start,size} (512-byte
// sectors).
func Partitions(sysRoot, disk string) []Partition {
	dir := filepath.Join(sysRoot, "block", disk)
	ents, _ := os.ReadDir(dir)
	var out []Partition
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), disk) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if _, err := os.Stat(filepath.Join(p, "partition")); err != nil {
			continue
		}
		rd := func(n string) int64 {
			b, _ := os.ReadFile(filepath.Join(p, n))
			v, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			return v
		}
		out = append(out, Partition{Name: e.Name(), Start: rd("start") * 512, Len: rd("size") * 512})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out
}

// WipeRanges returns the ranges to zero on a disk of size bytes with the
// given partitions: the first and last WipeSpan of the disk and of each
// partition, clipped to the disk, sorted and merged.
func WipeRanges(size int64, parts []Partition) []Range {
	var rs []Range
	add := func(off, n int64) {
		if off < 0 {
			n += off
			off = 0
		}
		if off+n > size {
			n = size - off
		}
		if n > 0 {
			rs = append(rs, Range{off, n})
		}
	}
	ends := func(off, n int64) {
		add(off, min(n, WipeSpan))
		add(off+n-min(n, WipeSpan), min(n, WipeSpan))
	}
	ends(0, size)
	for _, p := range parts {
		ends(p.Start, p.Len)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].Off < rs[j].Off })
	var out []Range
	for _, r := range rs {
		if k := len(out) - 1; k >= 0 && r.Off <= out[k].Off+out[k].Len {
			out[k].Len = max(out[k].Len, r.Off+r.Len-out[k].Off)
			continue
		}
		out = append(out, r)
	}
	return out
}

// Wipe zeroes the signature areas of the disk the hints select, or of
// every non-removable disk without hints, then asks the kernel to re-read
// the partition tables.
func (r *Runner) Wipe(ctx context.Context, t agentapi.Task, report func(agentapi.Progress)) (agentapi.Result, error) {
	var res agentapi.Result
	disks := r.Disks()
	var targets []agentapi.Disk
	if t.RootDeviceHints != nil {
		d, err := SelectDisk(disks, t.RootDeviceHints, 0)
		if err != nil {
			return res, fmt.Errorf("wipe: %w", err)
		}
		targets = []agentapi.Disk{d}
	} else {
		for _, d := range disks {
			if !d.Removable {
				targets = append(targets, d)
			}
		}
	}
	if len(targets) == 0 {
		return res, fmt.Errorf("wipe: %w: no disk found", ErrNoDisk)
	}
	start := time.Now()
	var total, done int64
	plans := make([][]Range, len(targets))
	for i, d := range targets {
		plans[i] = WipeRanges(d.SizeBytes, Partitions(r.sysRoot(), d.Name))
		for _, rg := range plans[i] {
			total += rg.Len
		}
	}
	var names []string
	for i, d := range targets {
		dev := r.devPath(d.Name)
		names = append(names, dev)
		n, err := wipeDevice(ctx, dev, plans[i])
		done += n
		report(progressFrom(agentapi.PhaseWiping, 0, done, total, start))
		if err != nil {
			return res, fmt.Errorf("wipe %s: %w", dev, err)
		}
		r.log().Info("wiped", "disk", dev, "ranges", len(plans[i]), "bytes", n)
	}
	res.Disk = strings.Join(names, ",")
	res.BytesWritten = done
	return res, nil
}

func (r *Runner) sysRoot() string {
	if r.SysRoot == "" {
		return "/sys"
	}
	return r.SysRoot
}

func wipeDevice(ctx context.Context, dev string, rs []Range) (int64, error) {
	flags := os.O_WRONLY
	if st, err := os.Stat(dev); err == nil && st.Mode()&os.ModeDevice != 0 {
		flags |= unix.O_EXCL // refuse a mounted or claimed disk
	}
	f, err := os.OpenFile(dev, flags, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	zero := make([]byte, WipeSpan)
	var n int64
	for _, rg := range rs {
		for off := rg.Off; off < rg.Off+rg.Len; {
			if err := ctx.Err(); err != nil {
				return n, err
			}
			c := min(int64(len(zero)), rg.Off+rg.Len-off)
			w, err := f.WriteAt(zero[:c], off)
			n += int64(w)
			if err != nil {
				return n, err
			}
			off += c
		}
	}
	if err := f.Sync(); err != nil {
		return n, err
	}
	if st, err := f.Stat(); err == nil && st.Mode()&os.ModeDevice != 0 {
		// Re-read the now empty partition table; EBUSY/EINVAL are not
		// fatal (the zeroes are on disk).
		_ = unix.IoctlSetInt(int(f.Fd()), unix.BLKRRPART, 0)
	}
	return n, f.Close()
}

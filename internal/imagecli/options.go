// Package imagecli implements the offline `metalctl image inspect` and
// `metalctl image convert` commands over pkg/imaging. They read a local
// file or stdin, need no metald, and are wired into metalctl's `image`
// command group by cmd/metalctl.
package imagecli

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/metal-iaas/metal/pkg/imaging"
)

// openFlags are the imaging.Options shared by inspect and convert.
type openFlags struct {
	disk        string
	allow       []string
	maxSize     string
	maxBuffer   string
	inputFormat string
}

func (f *openFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.disk, "disk", "", "disk of an OVA/OVF package: disk id or zero-based index (default: the first)")
	fl.StringSliceVar(&f.allow, "format-allow", nil, "comma-separated formats and compressions allowed in the chain (e.g. qcow2,vmdk,zstd); default: all")
	fl.StringVar(&f.maxSize, "max-size", "", "refuse images whose virtual size exceeds BYTES (suffixes K, M, G, T, KiB...; default 64TiB)")
	fl.StringVar(&f.maxBuffer, "max-buffer", "", "bound the out-of-order data held in memory in BYTES (default 256MiB)")
	fl.StringVar(&f.inputFormat, "input-format", "", `how to read input without magic: "raw" (default) or "vhd" (a fixed VHD, like qemu-img -f vpc)`)
}

func (f *openFlags) options() (imaging.Options, error) {
	o := imaging.Options{Disk: f.disk, Format: f.inputFormat}
	for _, a := range f.allow {
		if a = strings.ToLower(strings.TrimSpace(a)); a != "" {
			o.Allowed = append(o.Allowed, a)
		}
	}
	var err error
	if o.MaxVirtualSize, err = parseSize(f.maxSize, "--max-size"); err != nil {
		return o, err
	}
	if o.MaxBuffer, err = parseSize(f.maxBuffer, "--max-buffer"); err != nil {
		return o, err
	}
	switch f.inputFormat {
	case "", "raw", "vhd", "vpc":
	default:
		return o, fmt.Errorf("--input-format %q: want raw or vhd", f.inputFormat)
	}
	return o, nil
}

// parseSize reads "1073741824", "1G", "1GiB", "512M", "64T" (binary
// multiples; "" is 0, meaning the library default).
func parseSize(s, flag string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	num := strings.TrimRight(s, "KMGTPEkmgtpeiIbB")
	unit := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(s[len(num):], "B"), "b"))
	unit = strings.TrimSuffix(unit, "I")
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40, "P": 50, "E": 60}
	sh, ok := shift[unit]
	n, err := strconv.ParseUint(num, 10, 64)
	if !ok || err != nil {
		return 0, fmt.Errorf("%s %q: want a byte count such as 4294967296, 4G or 4GiB", flag, s)
	}
	if n == 0 {
		return 0, fmt.Errorf("%s %q: must be positive", flag, s)
	}
	if n > math.MaxInt64>>sh {
		return 0, fmt.Errorf("%s %q: too large", flag, s)
	}
	return int64(n << sh), nil
}

// source is an opened image: the stream and, unless it is an unpacked OVF
// directory, the counter of bytes read from the input.
type source struct {
	s     imaging.Stream
	count *imaging.CountingReader
	close func()
}

// openImage opens FILE (any image or OVA), stdin for "-", or an unpacked
// OVF package given as its directory or its .ovf descriptor.
func openImage(cmd *cobra.Command, name string, opts imaging.Options) (*source, error) {
	if name == "-" {
		cr := imaging.NewCountingReader(cmd.InOrStdin())
		s, err := imaging.Open(cr, opts)
		if err != nil {
			return nil, err
		}
		return &source{s: s, count: cr, close: func() {}}, nil
	}
	st, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if st.IsDir() || st.Mode().IsRegular() && strings.EqualFold(filepath.Ext(name), ".ovf") {
		dir := name
		if !st.IsDir() {
			dir = filepath.Dir(name)
		}
		s, err := imaging.OpenOVFDir(dir, opts)
		if err != nil {
			return nil, err
		}
		return &source{s: s, close: func() {}}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	cr := imaging.NewCountingReader(f)
	s, err := imaging.Open(cr, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &source{s: s, count: cr, close: func() { f.Close() }}, nil
}

func (s *source) inputBytes() int64 {
	if s.count == nil {
		return -1
	}
	return s.count.Count()
}

// human renders a byte count as "2.0 GiB".
func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

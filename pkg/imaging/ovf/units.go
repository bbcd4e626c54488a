package ovf

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// Capacity turns an ovf:capacity value and its ovf:capacityAllocationUnits
// into bytes. Units follow DMTF DSP0004 programmatic units ("byte",
// "byte * 2^30", "byte*10^9", "byte * 1024") or the OVF 0.9 words
// ("KiloBytes", "MegaBytes", "GigaBytes", "TeraBytes", binary multiples).
// The result must be positive and at most max bytes.
func Capacity(value, units string, max int64) (int64, error) {
	value = strings.TrimSpace(value)
	if strings.HasPrefix(value, "${") {
		return 0, fmt.Errorf("%w: capacity %q refers to a property", ErrUnsupported, value)
	}
	n, err := parseUint(value, "capacity")
	if err != nil {
		return 0, err
	}
	mult, err := unitMultiplier(units)
	if err != nil {
		return 0, err
	}
	hi, lo := bits.Mul64(uint64(n), mult)
	if hi != 0 || lo > uint64(1<<63-1) {
		return 0, fmt.Errorf("%w: capacity %s × %q overflows int64", ErrTooLarge, value, units)
	}
	b := int64(lo)
	if b == 0 {
		return 0, fmt.Errorf("%w: capacity is zero", ErrMalformed)
	}
	if b > max {
		return 0, fmt.Errorf("%w: capacity %d bytes exceeds the limit of %d bytes", ErrTooLarge, b, max)
	}
	return b, nil
}

func unitMultiplier(units string) (uint64, error) {
	u := strings.TrimSpace(units)
	switch strings.ToLower(u) {
	case "", "byte", "bytes":
		return 1, nil
	case "kilobytes", "kb":
		return 1 << 10, nil
	case "megabytes", "mb":
		return 1 << 20, nil
	case "gigabytes", "gb":
		return 1 << 30, nil
	case "terabytes", "tb":
		return 1 << 40, nil
	}
	terms := strings.Split(u, "*")
	if len(terms) > 4 {
		return 0, fmt.Errorf("%w: capacity units %q", ErrUnsupported, units)
	}
	if t := strings.ToLower(strings.TrimSpace(terms[0])); t != "byte" && t != "bytes" {
		return 0, fmt.Errorf("%w: capacity units %q are not bytes", ErrUnsupported, units)
	}
	mult := uint64(1)
	for _, t := range terms[1:] {
		f, err := unitFactor(strings.TrimSpace(t))
		if err != nil {
			return 0, fmt.Errorf("capacity units %q: %w", units, err)
		}
		hi, lo := bits.Mul64(mult, f)
		if hi != 0 || lo > uint64(1<<63-1) {
			return 0, fmt.Errorf("%w: capacity units %q overflow", ErrTooLarge, units)
		}
		mult = lo
	}
	return mult, nil
}

// unitFactor parses "1024" or "2^30" (base and exponent small integers).
func unitFactor(t string) (uint64, error) {
	base, exp, pow := strings.Cut(t, "^")
	b, err := strconv.ParseUint(strings.TrimSpace(base), 10, 32)
	if err != nil || b == 0 {
		return 0, fmt.Errorf("%w: bad factor %q", ErrUnsupported, t)
	}
	if !pow {
		return b, nil
	}
	e, err := strconv.ParseUint(strings.TrimSpace(exp), 10, 8)
	if err != nil || e > 64 {
		return 0, fmt.Errorf("%w: bad exponent in %q", ErrUnsupported, t)
	}
	r := uint64(1)
	for range e {
		hi, lo := bits.Mul64(r, b)
		if hi != 0 {
			return 0, fmt.Errorf("%w: factor %q overflows", ErrTooLarge, t)
		}
		r = lo
	}
	return r, nil
}

// FormatName maps an ovf:format URI to a short name: "vmdk-streamOptimized",
// "vmdk-sparse", "vmdk-compressed", "vmdk", "vhdx", "vhd", "qcow2", "raw",
// or "unknown".
func FormatName(uri string) string {
	u := strings.ToLower(strings.TrimSpace(uri))
	frag := ""
	if i := strings.LastIndexByte(u, '#'); i >= 0 {
		frag = u[i+1:]
	}
	switch {
	case strings.Contains(u, "vmdk"):
		switch frag {
		case "streamoptimized":
			return "vmdk-streamOptimized"
		case "sparse", "monolithicsparse":
			return "vmdk-sparse"
		case "compressed":
			return "vmdk-compressed"
		}
		return "vmdk"
	case strings.Contains(u, "vhdx"):
		return "vhdx"
	case strings.Contains(u, "vhd"), u == "http://go.microsoft.com/fwlink/?linkid=137171":
		return "vhd"
	case strings.Contains(u, "qcow"):
		return "qcow2"
	case strings.Contains(u, "raw"):
		return "raw"
	}
	return "unknown"
}

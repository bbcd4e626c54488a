package imaging

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// vmdkDescriptor is what matters of the text descriptor embedded in a
// sparse VMDK.
type vmdkDescriptor struct {
	createType string
	extents    []vmdkExtentLine
}

type vmdkExtentLine struct {
	access, typ, file string
	sectors           int64
}

// parseVMDKDescriptor checks an embedded descriptor. A sparse VMDK must be
// self-contained: its descriptor may describe only the one SPARSE extent
// that is the file itself. Extents naming other files (FLAT, VMFS, ZERO or
// SPARSE with a path), a parent (parentCID other than ffffffff,
// parentFileNameHint) or any other createType are refused: the class of
// CVE-2024-44082, where a converter follows a descriptor to a host file.
func parseVMDKDescriptor(b []byte) (vmdkDescriptor, error) {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	var d vmdkDescriptor
	for ln, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && !strings.ContainsAny(k, "\"") {
			k = strings.TrimSpace(k)
			v = strings.Trim(strings.TrimSpace(v), "\"")
			switch strings.ToLower(k) {
			case "createtype":
				d.createType = v
			case "parentcid":
				if !strings.EqualFold(v, "ffffffff") {
					return d, fmt.Errorf("%w: VMDK descriptor names a parent (parentCID=%s): only self-contained images are accepted", ErrHostile, v)
				}
			case "parentfilenamehint":
				return d, fmt.Errorf("%w: VMDK descriptor names a parent file %q", ErrHostile, v)
			}
			continue
		}
		e, err := parseExtentLine(line)
		if err != nil {
			return d, fmt.Errorf("%w: VMDK descriptor line %d: %v", ErrCorrupt, ln+1, err)
		}
		d.extents = append(d.extents, e)
	}
	switch d.createType {
	case "streamOptimized", "monolithicSparse":
	case "":
		return d, fmt.Errorf("%w: VMDK descriptor without createType", ErrCorrupt)
	default:
		return d, fmt.Errorf("%w: VMDK createType %q refers to separate extent files; only streamOptimized and monolithicSparse are accepted", ErrHostile, d.createType)
	}
	if len(d.extents) != 1 {
		return d, fmt.Errorf("%w: VMDK descriptor lists %d extents; a self-contained sparse VMDK has exactly one", ErrHostile, len(d.extents))
	}
	e := d.extents[0]
	if e.typ != "SPARSE" {
		return d, fmt.Errorf("%w: VMDK extent of type %s (file %q): only the embedded SPARSE extent is accepted", ErrHostile, e.typ, e.file)
	}
	if e.file == "" || strings.ContainsAny(e.file, "/\\:") || strings.Contains(e.file, "..") {
		return d, fmt.Errorf("%w: VMDK extent names file %q, not the image itself", ErrHostile, e.file)
	}
	return d, nil
}

// parseExtentLine parses `RW 2048 SPARSE "name.vmdk" [offset]`.
func parseExtentLine(line string) (vmdkExtentLine, error) {
	var e vmdkExtentLine
	q := strings.IndexByte(line, '"')
	head := line
	if q >= 0 {
		head = line[:q]
		rest := line[q+1:]
		end := strings.IndexByte(rest, '"')
		if end < 0 {
			return e, fmt.Errorf("unterminated file name in %q", line)
		}
		e.file = rest[:end]
	}
	f := strings.Fields(head)
	if len(f) < 3 {
		return e, fmt.Errorf("unrecognised line %q", line)
	}
	switch f[0] {
	case "RW", "RDONLY", "NOACCESS":
	default:
		return e, fmt.Errorf("unrecognised line %q", line)
	}
	e.access, e.typ = f[0], strings.ToUpper(f[2])
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || n < 0 {
		return e, fmt.Errorf("bad extent size in %q", line)
	}
	e.sectors = n
	return e, nil
}

package ovf

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Limits bound what Parse accepts.
type Limits struct {
	// MaxDescriptorSize bounds the descriptor in bytes; zero means
	// DefaultMaxDescriptorSize.
	MaxDescriptorSize int64
	// MaxCapacity bounds every disk capacity in bytes; zero means
	// DefaultMaxCapacity.
	MaxCapacity int64
}

const (
	DefaultMaxDescriptorSize int64 = 4 << 20
	DefaultMaxCapacity       int64 = 64 << 40
	maxDepth                       = 128
	maxTextLen                     = 64 << 10
)

// Envelope namespaces this package understands.
const (
	NamespaceOVF09 = "http://www.vmware.com/schema/ovf/1/envelope"
	NamespaceOVF1  = "http://schemas.dmtf.org/ovf/envelope/1"
	NamespaceOVF2  = "http://schemas.dmtf.org/ovf/envelope/2"
)

// Parse reads an OVF descriptor with the default limits.
func Parse(r io.Reader) (*Envelope, error) {
	return ParseLimits(r, Limits{})
}

// ParseLimits reads an OVF descriptor. It refuses DOCTYPE declarations,
// descriptors larger than the limit, unknown envelope namespaces, unsafe
// hrefs and capacities that overflow or exceed the limit.
func ParseLimits(r io.Reader, lim Limits) (*Envelope, error) {
	if lim.MaxDescriptorSize <= 0 {
		lim.MaxDescriptorSize = DefaultMaxDescriptorSize
	}
	if lim.MaxCapacity <= 0 {
		lim.MaxCapacity = DefaultMaxCapacity
	}
	buf, err := io.ReadAll(io.LimitReader(r, lim.MaxDescriptorSize+1))
	if err != nil {
		return nil, fmt.Errorf("ovf: read descriptor: %w", err)
	}
	if int64(len(buf)) > lim.MaxDescriptorSize {
		return nil, fmt.Errorf("%w: descriptor larger than %d bytes", ErrTooLarge, lim.MaxDescriptorSize)
	}
	p := &parser{lim: lim, env: &Envelope{}}
	if err := p.run(buf); err != nil {
		return nil, err
	}
	if err := p.resolve(); err != nil {
		return nil, err
	}
	return p.env, nil
}

type rawDisk struct {
	id, fileRef, capacity, units, populated, format, parentRef string
}

type parser struct {
	lim   Limits
	env   *Envelope
	ns    string
	disks []rawDisk
	// stack of local element names (only for elements in the envelope
	// namespace; others are pushed as "").
	stack []string
	// current virtual system index or -1, and depth at which it opened
	vsDepth []int
	text    *strings.Builder
	textFor func(string)
}

func (p *parser) run(buf []byte) error {
	d := xml.NewDecoder(bytes.NewReader(buf))
	d.Strict = true
	d.Entity = nil // only the five predefined entities
	d.CharsetReader = func(label string, in io.Reader) (io.Reader, error) {
		// The descriptor must be UTF-8 (or ASCII); encoding/xml already
		// accepts those without calling us.
		return nil, fmt.Errorf("%w: descriptor encoding %q (only UTF-8)", ErrUnsupported, label)
	}
	root := true
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, ErrUnsupported) {
				return err
			}
			return fmt.Errorf("%w: descriptor xml: %v", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return fmt.Errorf("%w: descriptor contains a <!%s> declaration (DOCTYPE and entities are not allowed)", ErrRefused, firstWord(string(t)))
		case xml.StartElement:
			if root {
				if err := p.envelope(t); err != nil {
					return err
				}
				root = false
			}
			if len(p.stack) >= maxDepth {
				return fmt.Errorf("%w: descriptor nests deeper than %d elements", ErrRefused, maxDepth)
			}
			if err := p.start(t); err != nil {
				return err
			}
		case xml.EndElement:
			p.end()
		case xml.CharData:
			if p.text != nil && p.text.Len()+len(t) <= maxTextLen {
				p.text.Write(t)
			}
		}
	}
	if root {
		return fmt.Errorf("%w: descriptor has no root element", ErrMalformed)
	}
	return nil
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return s
}

func (p *parser) envelope(t xml.StartElement) error {
	if t.Name.Local != "Envelope" {
		return fmt.Errorf("%w: root element is <%s>, want <Envelope>", ErrMalformed, t.Name.Local)
	}
	p.ns = t.Name.Space
	p.env.Namespace = p.ns
	switch p.ns {
	case NamespaceOVF09:
		p.env.Version = "0.9"
	case NamespaceOVF1:
		p.env.Version = "1.x"
	case NamespaceOVF2:
		p.env.Version = "2.x"
	default:
		return fmt.Errorf("%w: unknown envelope namespace %q", ErrUnsupported, p.ns)
	}
	if v := p.attr(t, "version"); v != "" && len(v) <= 16 && v[0] == p.env.Version[0] {
		p.env.Version = v
	}
	return nil
}

// attr returns the attribute with the given local name in the envelope
// namespace, or unqualified.
func (p *parser) attr(t xml.StartElement, local string) string {
	for _, a := range t.Attr {
		if a.Name.Local == local && (a.Name.Space == p.ns || a.Name.Space == "") {
			return a.Value
		}
	}
	return ""
}

// anyAttr returns the attribute with the given local name in any namespace.
func anyAttr(t xml.StartElement, local string) string {
	for _, a := range t.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

func (p *parser) parent() string {
	if len(p.stack) == 0 {
		return ""
	}
	return p.stack[len(p.stack)-1]
}

// sectionKind maps an element to its logical name: 0.9 writes sections as
// <Section xsi:type="ovf:DiskSection_Type"> and systems as <Content
// xsi:type="ovf:VirtualSystem_Type">.
func (p *parser) sectionKind(t xml.StartElement) string {
	if t.Name.Space != p.ns {
		return ""
	}
	switch t.Name.Local {
	case "Section", "Content":
		typ := anyAttr(t, "type")
		if i := strings.LastIndexByte(typ, ':'); i >= 0 {
			typ = typ[i+1:]
		}
		return strings.TrimSuffix(typ, "_Type")
	}
	return t.Name.Local
}

func (p *parser) start(t xml.StartElement) error {
	kind := p.sectionKind(t)
	parent := p.parent()
	p.stack = append(p.stack, kind)
	switch {
	case kind == "File" && parent == "References":
		return p.file(t)
	case kind == "Disk" && parent == "DiskSection":
		p.disks = append(p.disks, rawDisk{
			id:        p.attr(t, "diskId"),
			fileRef:   p.attr(t, "fileRef"),
			capacity:  p.attr(t, "capacity"),
			units:     p.attr(t, "capacityAllocationUnits"),
			populated: p.attr(t, "populatedSize"),
			format:    p.attr(t, "format"),
			parentRef: p.attr(t, "parentRef"),
		})
	case kind == "VirtualSystem":
		p.env.Systems = append(p.env.Systems, VirtualSystem{ID: p.attr(t, "id")})
		p.vsDepth = append(p.vsDepth, len(p.stack))
	case len(p.vsDepth) > 0 && len(p.stack) == p.vsDepth[len(p.vsDepth)-1]+1:
		vs := &p.env.Systems[len(p.env.Systems)-1]
		switch kind {
		case "Name":
			p.collect(func(s string) { vs.Name = s })
		case "OperatingSystemSection":
			vs.OSID = p.attr(t, "id")
			vs.OSType = anyAttr(t, "osType")
		}
	case kind == "Description" && parent == "OperatingSystemSection" && len(p.vsDepth) > 0 &&
		len(p.stack) == p.vsDepth[len(p.vsDepth)-1]+2:
		vs := &p.env.Systems[len(p.env.Systems)-1]
		p.collect(func(s string) { vs.OSDescription = s })
	}
	return nil
}

func (p *parser) collect(set func(string)) {
	p.text = &strings.Builder{}
	p.textFor = set
}

func (p *parser) end() {
	if p.text != nil {
		p.textFor(strings.TrimSpace(p.text.String()))
		p.text, p.textFor = nil, nil
	}
	if n := len(p.vsDepth); n > 0 && p.vsDepth[n-1] == len(p.stack) {
		p.vsDepth = p.vsDepth[:n-1]
	}
	if len(p.stack) > 0 {
		p.stack = p.stack[:len(p.stack)-1]
	}
}

func (p *parser) file(t xml.StartElement) error {
	f := File{ID: p.attr(t, "id"), Href: p.attr(t, "href"), Size: -1}
	if f.ID == "" {
		return fmt.Errorf("%w: References/File without ovf:id", ErrMalformed)
	}
	if err := CheckHref(f.Href); err != nil {
		return fmt.Errorf("file %q: %w", f.ID, err)
	}
	if s := p.attr(t, "size"); s != "" {
		n, err := parseUint(s, "size of file "+f.ID)
		if err != nil {
			return err
		}
		f.Size = n
	}
	switch c := p.attr(t, "compression"); c {
	case "", "identity":
	case "gzip":
		f.Compression = "gzip"
	default:
		return fmt.Errorf("%w: file %q uses compression %q (only gzip and identity)", ErrUnsupported, f.ID, c)
	}
	if s := p.attr(t, "chunkSize"); s != "" {
		n, err := parseUint(s, "chunkSize of file "+f.ID)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: file %q has ovf:chunkSize 0", ErrMalformed, f.ID)
		}
		f.ChunkSize = n
	}
	p.env.Files = append(p.env.Files, f)
	return nil
}

func parseUint(s, what string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return 0, fmt.Errorf("%w: %s %q overflows int64", ErrTooLarge, what, s)
		}
		return 0, fmt.Errorf("%w: %s %q is not a decimal integer", ErrMalformed, what, s)
	}
	if n < 0 {
		return 0, fmt.Errorf("%w: %s %q is negative", ErrMalformed, what, s)
	}
	return n, nil
}

// resolve links disks to files and validates ids and capacities.
func (p *parser) resolve() error {
	files := make(map[string]File, len(p.env.Files))
	for _, f := range p.env.Files {
		if _, dup := files[f.ID]; dup {
			return fmt.Errorf("%w: file id %q declared twice", ErrMalformed, f.ID)
		}
		files[f.ID] = f
	}
	seen := make(map[string]bool, len(p.disks))
	for _, r := range p.disks {
		if r.id == "" {
			return fmt.Errorf("%w: Disk without ovf:diskId", ErrMalformed)
		}
		if seen[r.id] {
			return fmt.Errorf("%w: disk id %q declared twice", ErrMalformed, r.id)
		}
		seen[r.id] = true
		d := Disk{ID: r.id, FileRef: r.fileRef, FormatURI: r.format, Format: FormatName(r.format), ParentRef: r.parentRef, FileSize: -1}
		if r.capacity == "" {
			return fmt.Errorf("%w: disk %q has no ovf:capacity", ErrMalformed, r.id)
		}
		capacity, err := Capacity(r.capacity, r.units, p.lim.MaxCapacity)
		if err != nil {
			return fmt.Errorf("disk %q: %w", r.id, err)
		}
		d.Capacity = capacity
		if r.populated != "" {
			if d.PopulatedSize, err = parseUint(r.populated, "populatedSize of disk "+r.id); err != nil {
				return err
			}
		}
		if r.fileRef != "" {
			f, ok := files[r.fileRef]
			if !ok {
				return fmt.Errorf("%w: disk %q refers to file %q, which References does not declare", ErrMalformed, r.id, r.fileRef)
			}
			d.Href, d.Compression, d.ChunkSize, d.FileSize = f.Href, f.Compression, f.ChunkSize, f.Size
		}
		p.env.Disks = append(p.env.Disks, d)
	}
	return nil
}

package ovf

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"
)

// DefaultMaxManifestSize bounds a manifest or certificate file.
const DefaultMaxManifestSize int64 = 1 << 20

// ManifestEntry is one "ALGO(name)= hexdigest" line.
type ManifestEntry struct {
	// Algo is "SHA1", "SHA256" or "SHA512".
	Algo string `json:"algo"`
	Name string `json:"name"`
	Sum  []byte `json:"sum"`
}

// Manifest is a parsed .mf file.
type Manifest struct {
	Entries []ManifestEntry `json:"entries"`
}

// ParseManifest reads a manifest: one "SHA256(disk1.vmdk)= hex" line per
// file ("SHA1(name) = hex" and "SHA512(...)" too; blank lines and CRLF are
// tolerated). A name listed twice is refused, as are unknown algorithms,
// digests of the wrong length and manifests above DefaultMaxManifestSize.
func ParseManifest(r io.Reader) (*Manifest, error) {
	buf, err := io.ReadAll(io.LimitReader(r, DefaultMaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("ovf: read manifest: %w", err)
	}
	if int64(len(buf)) > DefaultMaxManifestSize {
		return nil, fmt.Errorf("%w: manifest larger than %d bytes", ErrTooLarge, DefaultMaxManifestSize)
	}
	m := &Manifest{}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(buf))
	sc.Buffer(make([]byte, 0, 4096), len(buf)+1)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		e, err := parseDigestLine(line)
		if err != nil {
			return nil, fmt.Errorf("manifest line %d: %w", n, err)
		}
		if seen[e.Name] {
			return nil, fmt.Errorf("%w: manifest line %d lists %q a second time", ErrMalformed, n, e.Name)
		}
		seen[e.Name] = true
		m.Entries = append(m.Entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrMalformed, err)
	}
	return m, nil
}

// parseDigestLine parses "ALGO(name)= hex" or "ALGO(name) = hex"; names
// may contain parentheses, the last ")" before the last "=" ends them.
func parseDigestLine(line string) (ManifestEntry, error) {
	open := strings.IndexByte(line, '(')
	eq := strings.LastIndexByte(line, '=')
	if open <= 0 || eq < open {
		return ManifestEntry{}, fmt.Errorf("%w: %q is not ALGO(name)= digest", ErrMalformed, clip(line))
	}
	left := strings.TrimRight(line[:eq], " \t")
	if !strings.HasSuffix(left, ")") || len(left)-1 <= open+1 {
		return ManifestEntry{}, fmt.Errorf("%w: %q is not ALGO(name)= digest", ErrMalformed, clip(line))
	}
	algo := normalizeAlgo(line[:open])
	name := left[open+1 : len(left)-1]
	size, ok := digestSize(algo)
	if !ok {
		return ManifestEntry{}, fmt.Errorf("%w: digest algorithm %q (only SHA1, SHA256, SHA512)", ErrUnsupported, clip(line[:open]))
	}
	if err := checkRelPath(name, "manifest name"); err != nil {
		return ManifestEntry{}, err
	}
	sum, err := hex.DecodeString(strings.TrimSpace(line[eq+1:]))
	if err != nil || len(sum) != size {
		return ManifestEntry{}, fmt.Errorf("%w: %s digest of %q is not %d hex digits", ErrMalformed, algo, name, 2*size)
	}
	return ManifestEntry{Algo: algo, Name: name, Sum: sum}, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// normalizeAlgo maps the spellings tools write ("SHA256", "sha256",
// OpenSSL 3's "SHA2-256", "SHA-256") to "SHA1", "SHA256" or "SHA512".
func normalizeAlgo(a string) string {
	a = strings.ToUpper(strings.TrimSpace(a))
	switch a {
	case "SHA-1":
		return "SHA1"
	case "SHA2-256", "SHA-256":
		return "SHA256"
	case "SHA2-512", "SHA-512":
		return "SHA512"
	}
	return a
}

func digestSize(algo string) (int, bool) {
	switch algo {
	case "SHA1":
		return sha1.Size, true
	case "SHA256":
		return sha256.Size, true
	case "SHA512":
		return sha512.Size, true
	}
	return 0, false
}

// NewHash returns a fresh hash for a manifest algorithm name ("SHA1",
// "SHA256", "SHA512", case-insensitive).
func NewHash(algo string) (hash.Hash, error) {
	switch normalizeAlgo(algo) {
	case "SHA1":
		return sha1.New(), nil
	case "SHA256":
		return sha256.New(), nil
	case "SHA512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("%w: digest algorithm %q", ErrUnsupported, algo)
}

// Digest returns the manifest's digest for a file name.
func (m *Manifest) Digest(name string) (algo string, sum []byte, ok bool) {
	for _, e := range m.Entries {
		if e.Name == name {
			return e.Algo, e.Sum, true
		}
	}
	return "", nil, false
}

// ErrDigestMismatch is wrapped by Manifest.Check when a file's digest
// differs from the manifest.
var ErrDigestMismatch = fmt.Errorf("%w: digest mismatch", ErrRefused)

// Check compares a computed digest with the manifest entry for name. A
// name the manifest does not list is an error too: a manifest must cover
// every file of the package that is read.
func (m *Manifest) Check(name, algo string, got []byte) error {
	a, want, ok := m.Digest(name)
	if !ok {
		return fmt.Errorf("%w: manifest has no digest for %q", ErrRefused, name)
	}
	if !strings.EqualFold(a, algo) {
		return fmt.Errorf("%w: manifest digest of %q is %s, computed %s", ErrMalformed, name, a, algo)
	}
	if !bytes.Equal(want, got) {
		return fmt.Errorf("%w: %s of %q is %x, manifest says %x", ErrDigestMismatch, a, name, got, want)
	}
	return nil
}

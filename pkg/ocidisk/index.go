package ocidisk

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Platform is an index entry's platform.
type Platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// DefaultPlatform is what an index entry is picked for unless told
// otherwise: the machines metal provisions.
var DefaultPlatform = Platform{OS: "linux", Architecture: "amd64"}

// ParsePlatform reads os/arch[/variant].
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
		return Platform{}, fmt.Errorf("platform %q: want OS/ARCH[/VARIANT], e.g. linux/amd64", s)
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// Index is an OCI image index or a Docker manifest list.
type Index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Manifests     []Descriptor `json:"manifests"`
}

// ParseIndex reads an OCI image index or a Docker manifest list.
func ParseIndex(b []byte) (*Index, error) {
	var ix Index
	if err := json.Unmarshal(b, &ix); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if ix.SchemaVersion != 2 {
		return nil, fmt.Errorf("%w: schemaVersion %d (want 2)", ErrMalformed, ix.SchemaVersion)
	}
	if ix.MediaType != "" && ix.MediaType != MediaOCIIndex && ix.MediaType != MediaDockerList {
		return nil, fmt.Errorf("%w: media type %q is not an index", ErrMalformed, ix.MediaType)
	}
	if len(ix.Manifests) > maxLayers {
		return nil, fmt.Errorf("%w: %d manifests (at most %d)", ErrMalformed, len(ix.Manifests), maxLayers)
	}
	for i, d := range ix.Manifests {
		if err := checkDescriptor(d); err != nil {
			return nil, fmt.Errorf("%w: manifest %d: %v", ErrMalformed, i, err)
		}
	}
	return &ix, nil
}

// IsIndex says whether a manifest media type is an index.
func IsIndex(mediaType string) bool {
	return mediaType == MediaOCIIndex || mediaType == MediaDockerList
}

// Select picks the image manifest for want out of ix (a variant in want
// must match; none in want matches any), or refuses naming the
// platforms ix has.
func Select(ix *Index, want Platform) (Descriptor, error) {
	var have []string
	var match []Descriptor
	for _, d := range ix.Manifests {
		if d.Platform == nil {
			continue // attestations and other platform-less entries
		}
		p := *d.Platform
		have = append(have, p.String())
		if p.OS == want.OS && p.Architecture == want.Architecture && (want.Variant == "" || want.Variant == p.Variant) {
			match = append(match, d)
		}
	}
	if len(match) == 0 {
		if len(have) == 0 {
			return Descriptor{}, fmt.Errorf("%w: the index has no platform entries", ErrNoDisk)
		}
		return Descriptor{}, fmt.Errorf("%w: the index has no %s entry (it has %s; choose one with --platform)",
			ErrNoDisk, want, strings.Join(have, ", "))
	}
	return match[0], nil
}

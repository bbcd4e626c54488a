// Package ocidisk finds the disk image in an OCI or Docker registry
// manifest: it knows the wire shapes that carry a disk (a KubeVirt
// containerDisk, an OCI 1.1 artifact, ORAS' defaults with a disktype
// annotation), picks a platform out of an image index, and reads the
// disk file out of a containerDisk layer. It parses bytes and streams
// only; fetching them is the caller's (internal/oci). It imports nothing
// of the project.
package ocidisk

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Media types of manifests, configs and layers.
const (
	MediaOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaOCIIndex       = "application/vnd.oci.image.index.v1+json"
	MediaDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaOCIConfig      = "application/vnd.oci.image.config.v1+json"
	MediaDockerConfig   = "application/vnd.docker.container.image.v1+json"
	MediaEmpty          = "application/vnd.oci.empty.v1+json"
	// MediaUnknownConfig is the config ORAS wrote before OCI 1.1.
	MediaUnknownConfig = "application/vnd.unknown.config.v1+json"
	// AnnotationDiskType is the layer (or manifest) annotation Ironic's
	// recipe sets with `oras push -a disktype=qcow2`.
	AnnotationDiskType = "disktype"
	// AnnotationTitle names the file a layer was pushed from (ORAS).
	AnnotationTitle = "org.opencontainers.image.title"
)

// ErrNoDisk: the manifest carries no disk image.
var ErrNoDisk = errors.New("no disk image")

// ErrMalformed: the bytes are not a manifest or index this package reads.
var ErrMalformed = errors.New("malformed manifest")

// Descriptor is a content descriptor of a manifest.
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Platform     *Platform         `json:"platform,omitempty"`
}

// Manifest is an OCI image manifest or a Docker v2 schema 2 manifest.
type Manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        Descriptor        `json:"config"`
	Layers        []Descriptor      `json:"layers"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// Kind is the shape a disk comes in.
type Kind string

// The shapes.
const (
	// ContainerDisk: a container image whose layers (tar) hold one file
	// under disk/ (KubeVirt).
	ContainerDisk Kind = "containerdisk"
	// Artifact: one layer is the disk file itself (OCI 1.1 artifact,
	// ORAS push).
	Artifact Kind = "artifact"
)

// Plan says where the disk is: for an Artifact, Layers holds the one
// layer that is the disk; for a ContainerDisk, every layer, to be searched
// last to first (the top layer wins, as in the container's file system).
type Plan struct {
	Kind   Kind
	Layers []Descriptor
	// DiskType is the disktype annotation when there is one (a hint only:
	// the format is detected by magic).
	DiskType string
}

// maxLayers bounds a manifest's layer list.
const maxLayers = 1000

// Known non-disk payloads, refused by name.
var notDisks = map[string]string{
	"application/vnd.cncf.helm.config.v1+json":                "a Helm chart",
	"application/vnd.cncf.helm.chart.content.v1.tar+gzip":     "a Helm chart",
	"application/vnd.dev.cosign.simplesigning.v1+json":        "a cosign signature",
	"application/vnd.dev.sigstore.bundle.v0.3+json":           "a sigstore bundle",
	"application/vnd.in-toto+json":                            "an in-toto attestation",
	"application/vnd.wasm.config.v1+json":                     "a WebAssembly module",
	"application/vnd.cncf.flux.config.v1+json":                "a Flux artifact",
	"application/vnd.oci.image.layer.nondistributable.v1.tar": "a non-distributable layer",
	"application/vnd.docker.plugin.v1+json":                   "a Docker plugin",
	"application/vnd.cncf.notary.signature":                   "a Notary signature",
	"application/spdx+json":                                   "an SPDX SBOM",
	"application/vnd.cyclonedx+json":                          "a CycloneDX SBOM",
}

// ParseManifest reads an OCI image manifest or a Docker v2s2 manifest.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("%w: schemaVersion %d (want 2)", ErrMalformed, m.SchemaVersion)
	}
	if m.MediaType != "" && m.MediaType != MediaOCIManifest && m.MediaType != MediaDockerManifest {
		return nil, fmt.Errorf("%w: media type %q is not an image manifest", ErrMalformed, m.MediaType)
	}
	if len(m.Layers) > maxLayers {
		return nil, fmt.Errorf("%w: %d layers (at most %d)", ErrMalformed, len(m.Layers), maxLayers)
	}
	for i, l := range append([]Descriptor{m.Config}, m.Layers...) {
		if err := checkDescriptor(l); err != nil {
			what := "config"
			if i > 0 {
				what = fmt.Sprintf("layer %d", i-1)
			}
			return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
		}
	}
	return &m, nil
}

func checkDescriptor(d Descriptor) error {
	if d.MediaType == "" {
		return errors.New("no media type")
	}
	if d.Size < 0 {
		return fmt.Errorf("size %d", d.Size)
	}
	return CheckDigest(d.Digest)
}

// CheckDigest accepts sha256:<64 lower-case hex digits> only.
func CheckDigest(d string) error {
	hex, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		return fmt.Errorf("digest %q is not sha256:<64 hex digits>", d)
	}
	return nil
}

// Classify says where the disk is in m, or why there is none
// (ErrNoDisk, naming what m is instead).
func Classify(m *Manifest) (Plan, error) {
	cfg := m.Config.MediaType
	if what, ok := notDisks[cfg]; ok {
		return Plan{}, fmt.Errorf("%w: the manifest is %s (config %s)", ErrNoDisk, what, cfg)
	}
	if what, ok := notDisks[m.ArtifactType]; ok {
		return Plan{}, fmt.Errorf("%w: the manifest is %s (artifactType %s)", ErrNoDisk, what, m.ArtifactType)
	}
	if len(m.Layers) == 0 {
		return Plan{}, fmt.Errorf("%w: the manifest has no layers", ErrNoDisk)
	}
	switch {
	case (cfg == MediaOCIConfig || cfg == MediaDockerConfig) && m.ArtifactType == "":
		for _, l := range m.Layers {
			if !isTarLayer(l.MediaType) {
				return Plan{}, fmt.Errorf("%w: container image layer %s has media type %s, not a tar", ErrNoDisk, l.Digest, l.MediaType)
			}
		}
		layers := slices.Clone(m.Layers)
		slices.Reverse(layers)
		return Plan{Kind: ContainerDisk, Layers: layers}, nil
	case cfg == MediaEmpty || cfg == MediaUnknownConfig || m.ArtifactType != "" || !strings.Contains(cfg, "image.config"):
		return pickArtifactLayer(m)
	}
	return Plan{}, fmt.Errorf("%w: config media type %s is neither a container image nor an artifact", ErrNoDisk, cfg)
}

// isTarLayer: a container image layer (OCI or Docker, any compression).
func isTarLayer(mt string) bool {
	switch mt {
	case "application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip",
		"application/vnd.oci.image.layer.v1.tar+zstd",
		"application/vnd.docker.image.rootfs.diff.tar", "application/vnd.docker.image.rootfs.diff.tar.gzip":
		return true
	}
	return false
}

// pickArtifactLayer chooses the disk among an artifact's layers: the only
// one, or the only one that says it is a disk (a disk media type, a
// disktype annotation or a disk file name).
func pickArtifactLayer(m *Manifest) (Plan, error) {
	var cands []Descriptor
	for _, l := range m.Layers {
		if what, ok := notDisks[l.MediaType]; ok {
			if len(m.Layers) == 1 {
				return Plan{}, fmt.Errorf("%w: the artifact's layer is %s (%s)", ErrNoDisk, what, l.MediaType)
			}
			continue
		}
		if len(m.Layers) == 1 || looksLikeDisk(l) {
			cands = append(cands, l)
		}
	}
	if len(cands) != 1 {
		var names []string
		for _, l := range m.Layers {
			names = append(names, describe(l))
		}
		if len(cands) == 0 {
			return Plan{}, fmt.Errorf("%w: none of the artifact's %d layers is marked as a disk (%s)", ErrNoDisk, len(m.Layers), strings.Join(names, ", "))
		}
		return Plan{}, fmt.Errorf("%w: %d of the artifact's layers look like disks, want one (%s)", ErrNoDisk, len(cands), strings.Join(names, ", "))
	}
	dt := cands[0].Annotations[AnnotationDiskType]
	if dt == "" {
		dt = m.Annotations[AnnotationDiskType]
	}
	return Plan{Kind: Artifact, Layers: cands, DiskType: dt}, nil
}

var diskSuffixes = []string{".qcow2", ".img", ".raw", ".vmdk", ".vhd", ".vhdx", ".ova", ".gz", ".xz", ".zst", ".bz2"}

func looksLikeDisk(l Descriptor) bool {
	if l.Annotations[AnnotationDiskType] != "" {
		return true
	}
	mt := l.MediaType
	for _, s := range []string{"qcow2", "vmdk", "vhd", "raw", "disk"} {
		if strings.Contains(mt, s) {
			return true
		}
	}
	title := strings.ToLower(l.Annotations[AnnotationTitle])
	for _, s := range diskSuffixes {
		if strings.HasSuffix(title, s) {
			return true
		}
	}
	return false
}

func describe(l Descriptor) string {
	s := l.MediaType
	if t := l.Annotations[AnnotationTitle]; t != "" {
		s = t + " " + s
	}
	return s
}

package oci

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/metal-iaas/metal/pkg/ocidisk"
)

// ArtifactType is the artifactType of the disks metald pushes.
const ArtifactType = "application/vnd.metal-iaas.disk.v1"

// emptyConfig is the OCI 1.1 empty descriptor's content.
var emptyConfig = []byte("{}")

// File is a stored image file to push as an artifact's one layer.
type File struct {
	Path   string
	Size   int64
	SHA256 string // of the file, hex
	// MediaType of the layer (DiskMediaType).
	MediaType string
	// Annotations of the layer (title, disktype, what metald knows).
	Annotations map[string]string
}

// Push writes f to ref as an OCI 1.1 artifact: artifactType
// ArtifactType, the empty config, one layer that is the file (read back
// by Open, Ironic and `oras pull`). It returns the manifest's digest.
func Push(ctx context.Context, ref name.Reference, f File, manifestAnnotations map[string]string, o Options) (string, error) {
	p, err := remote.NewPusher(o.remoteOptions()...)
	if err != nil {
		return "", classify(err, ref.String())
	}
	repo := ref.Context()
	cfg := static.NewLayer(emptyConfig, types.MediaType(ocidisk.MediaEmpty))
	if err := p.Upload(ctx, repo, cfg); err != nil {
		return "", classify(err, "upload of the config to "+repo.Name())
	}
	layer := &fileLayer{f: f}
	if err := p.Upload(ctx, repo, layer); err != nil {
		return "", classify(err, "upload of "+f.Path+" to "+repo.Name())
	}
	cfgSum := sha256.Sum256(emptyConfig)
	m := ocidisk.Manifest{
		SchemaVersion: 2,
		MediaType:     ocidisk.MediaOCIManifest,
		ArtifactType:  ArtifactType,
		Config: ocidisk.Descriptor{MediaType: ocidisk.MediaEmpty, Size: int64(len(emptyConfig)),
			Digest: "sha256:" + hex.EncodeToString(cfgSum[:])},
		Layers: []ocidisk.Descriptor{{MediaType: f.MediaType, Size: f.Size, Digest: "sha256:" + f.SHA256,
			Annotations: f.Annotations}},
		Annotations: manifestAnnotations,
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	if err := p.Put(ctx, ref, rawManifest(b)); err != nil {
		return "", classify(err, "manifest "+ref.String())
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// DiskMediaType is the layer media type of a stored image: the community
// type of its format, with a +suffix for an outer compression
// (chain is outermost first, e.g. [xz qcow2]). Readers detect the format
// by magic; the type is a label.
func DiskMediaType(chain []string) string {
	if len(chain) == 0 {
		return "application/octet-stream"
	}
	var mt string
	switch inner := chain[len(chain)-1]; inner {
	case "qcow2":
		mt = "application/vnd.qemu.qcow2"
	case "vmdk":
		mt = "application/vnd.vmware.vmdk"
	case "vhd", "vhdx":
		mt = "application/vnd.microsoft." + inner
	case "ova":
		mt = "application/vnd.dmtf.ova"
	default:
		mt = "application/vnd.metal-iaas.disk." + inner
	}
	if len(chain) > 1 {
		mt += "+" + chain[0]
	}
	return mt
}

type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error) { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) {
	return types.MediaType(ocidisk.MediaOCIManifest), nil
}

// fileLayer is a stored file as a v1.Layer, its digest known already.
type fileLayer struct{ f File }

func (l *fileLayer) Digest() (v1.Hash, error) { return v1.NewHash("sha256:" + l.f.SHA256) }
func (l *fileLayer) DiffID() (v1.Hash, error) { return l.Digest() }
func (l *fileLayer) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(l.f.Path)
	if err != nil {
		return nil, fmt.Errorf("image file: %w", err)
	}
	return f, nil
}
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) { return l.Compressed() }
func (l *fileLayer) Size() (int64, error)                 { return l.f.Size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error)  { return types.MediaType(l.f.MediaType), nil }

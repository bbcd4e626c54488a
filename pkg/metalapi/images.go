package metalapi

import "time"

// Image is an image of the library, as GET /api/v1/images[/{name}] and
// PUT /api/v1/images/{name} (the upload, application/octet-stream, with
// replace=true to overwrite) show it.
type Image struct {
	Name string `json:"name" yaml:"name"`
	// File is the file's name in metald's image directory.
	File string `json:"file" yaml:"file"`
	// Format is the image format (raw, qcow2, vmdk, vhd, vhdx, ova);
	// Chain the layers read to get it, outermost first (e.g. xz, qcow2).
	Format string   `json:"format" yaml:"format"`
	Chain  []string `json:"chain" yaml:"chain"`
	// Size is the uploaded file's; VirtualSize the raw disk's.
	Size        int64 `json:"size" yaml:"size"`
	VirtualSize int64 `json:"virtual_size" yaml:"virtual_size"`
	// SHA256 is of the uploaded file; RawSHA256 of the raw disk it
	// describes (the sha256sum of qemu-img convert -O raw).
	SHA256    string    `json:"sha256" yaml:"sha256"`
	RawSHA256 string    `json:"raw_sha256" yaml:"raw_sha256"`
	CreatedAt time.Time `json:"created_at" yaml:"created_at"`
}

// QueryReplace is the query parameter of an upload that overwrites an
// existing image (replace=true).
const QueryReplace = "replace"

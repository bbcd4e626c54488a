package agentapi

import (
	"fmt"
	"path"
	"strings"
)

// ConfigDriveFormat names the layout of a config drive.
type ConfigDriveFormat string

const (
	// ConfigDriveNoCloud is cloud-init's NoCloud seed: a filesystem
	// labelled CIDATA holding meta-data, user-data, vendor-data and
	// network-config at its root.
	ConfigDriveNoCloud ConfigDriveFormat = "nocloud"
	// ConfigDriveOpenStack is OpenStack's config drive: label CONFIG-2,
	// openstack/latest/{meta_data.json,user_data,network_data.json}.
	ConfigDriveOpenStack ConfigDriveFormat = "configdrive"
	// ConfigDriveNone writes nothing.
	ConfigDriveNone ConfigDriveFormat = "none"
)

// ParseConfigDriveFormat accepts the formats by name ("" is nocloud).
func ParseConfigDriveFormat(s string) (ConfigDriveFormat, error) {
	switch f := ConfigDriveFormat(strings.ToLower(strings.TrimSpace(s))); f {
	case "":
		return ConfigDriveNoCloud, nil
	case ConfigDriveNoCloud, ConfigDriveOpenStack, ConfigDriveNone:
		return f, nil
	}
	return "", fmt.Errorf("%w: config drive %q: want nocloud, configdrive or none", ErrInvalid, s)
}

// Config-drive limits the agent enforces before it writes anything.
const (
	// DefaultConfigDriveSize is the partition the agent appends: 64 MiB,
	// a valid FAT32 volume at 512-byte clusters, as Ironic's limit.
	DefaultConfigDriveSize = 64 << 20
	MinConfigDriveSize     = 34 << 20
	MaxConfigDriveSize     = 256 << 20
	// MaxConfigDriveFiles bounds the file count; the data must fit the
	// partition with room for the filesystem's own structures.
	MaxConfigDriveFiles = 64
)

// ConfigDrive is what the agent writes onto the target disk after the
// image: a new partition at the very end of the disk holding a FAT
// filesystem labelled Label with Files. metald renders the content; the
// agent only lays it out.
type ConfigDrive struct {
	Format    ConfigDriveFormat `json:"format"`
	Label     string            `json:"label"`
	SizeBytes int64             `json:"size_bytes"`
	Files     []File            `json:"files"`
}

// File is one file of a config drive; Path is relative, with "/"
// separators ("openstack/latest/meta_data.json").
type File struct {
	Path string `json:"path"`
	Data []byte `json:"data"`
}

// Validate checks a config drive before the agent touches the disk.
func (d *ConfigDrive) Validate() error {
	switch d.Format {
	case ConfigDriveNoCloud, ConfigDriveOpenStack:
	default:
		return fmt.Errorf("%w: config drive format %q", ErrInvalid, d.Format)
	}
	if d.Label == "" || len(d.Label) > 11 || strings.ContainsFunc(d.Label, func(r rune) bool {
		return r < 0x20 || r > 0x7e || strings.ContainsRune(`"*+,./:;<=>?[\]|`, r)
	}) {
		return fmt.Errorf("%w: config drive label %q is not a FAT volume label (1–11 printable ASCII)", ErrInvalid, d.Label)
	}
	if d.SizeBytes < MinConfigDriveSize || d.SizeBytes > MaxConfigDriveSize || d.SizeBytes%(1<<20) != 0 {
		return fmt.Errorf("%w: config drive size %d: want whole MiB in [%d, %d]", ErrInvalid, d.SizeBytes, MinConfigDriveSize, MaxConfigDriveSize)
	}
	if len(d.Files) == 0 || len(d.Files) > MaxConfigDriveFiles {
		return fmt.Errorf("%w: config drive with %d files (1–%d)", ErrInvalid, len(d.Files), MaxConfigDriveFiles)
	}
	var total int64
	seen := map[string]bool{}
	for _, f := range d.Files {
		clean := path.Clean(f.Path)
		if f.Path == "" || clean != f.Path || path.IsAbs(f.Path) || clean == "." || strings.HasPrefix(clean, "../") || clean == ".." {
			return fmt.Errorf("%w: config drive file path %q is not a clean relative path", ErrInvalid, f.Path)
		}
		if seen[strings.ToLower(clean)] {
			return fmt.Errorf("%w: config drive file %q twice (FAT names ignore case)", ErrInvalid, f.Path)
		}
		seen[strings.ToLower(clean)] = true
		total += int64(len(f.Data))
	}
	if total > d.SizeBytes/2 {
		return fmt.Errorf("%w: config drive files hold %d bytes, more than half the %d-byte drive", ErrInvalid, total, d.SizeBytes)
	}
	return nil
}

// DiskNeed is the disk size a provision task needs: the image, and the
// config drive with a MiB for alignment and GPT's backup table.
func (t *Task) DiskNeed() int64 {
	if t.Image == nil {
		return 0
	}
	need := t.Image.VirtualSize
	if t.ConfigDrive != nil {
		need = (need+(1<<20)-1)&^((1<<20)-1) + t.ConfigDrive.SizeBytes + 1<<20
	}
	return need
}

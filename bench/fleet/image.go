package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// buildImage makes (once; cached in the work directory) a qcow2 of an
// ext4 disk of diskMiB holding about fillMiB of real files from /usr:
// libraries, documentation, locales — a realistic mix of compressible and
// incompressible data, like a cloud image's.
func buildImage(ctx context.Context, o options) (string, error) {
	out := filepath.Join(o.dir, fmt.Sprintf("fleet-%dM-%dM.qcow2", o.diskMiB, o.fillMiB))
	if fileSize(out) > 0 {
		return out, nil
	}
	logf("building the image: %d MiB of /usr into a %d MiB ext4 disk", o.fillMiB, o.diskMiB)
	fill := filepath.Join(o.dir, "fill")
	_ = os.RemoveAll(fill)
	budget := int64(o.fillMiB) << 20
	err := filepath.WalkDir("/usr/share", func(p string, d fs.DirEntry, err error) error {
		if err != nil || budget <= 0 {
			return fs.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.Size() < 1024 {
			return nil
		}
		budget -= info.Size()
		return copyFile(p, filepath.Join(fill, strings.TrimPrefix(p, "/")))
	})
	if err != nil && err != fs.SkipDir {
		return "", err
	}
	raw := out + ".raw"
	defer os.Remove(raw)
	for _, c := range [][]string{
		{"truncate", "-s", fmt.Sprintf("%dM", o.diskMiB), raw},
		{"mkfs.ext4", "-q", "-F", "-d", fill, "-L", "fleet", raw},
		{"qemu-img", "convert", "-O", "qcow2", raw, out + ".tmp"},
		{"mv", out + ".tmp", out},
	} {
		if b, err := exec.CommandContext(ctx, c[0], c[1:]...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("%s: %w\n%s", strings.Join(c, " "), err, b)
		}
	}
	_ = os.RemoveAll(fill)
	return out, nil
}

func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return nil // unreadable: skip
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

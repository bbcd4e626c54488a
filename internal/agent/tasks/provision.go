package tasks

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/metal-iaas/metal/internal/agent/configdrive"
	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/imaging"
)

// provision is one provision task under way: what both ways of writing
// the image (a stream, or verified chunks) need.
type provision struct {
	task   agentapi.Task
	img    *agentapi.Image
	disk   agentapi.Disk
	dev    string
	log    *slog.Logger
	start  time.Time
	report func(agentapi.Progress)
}

// Provision writes t.Image onto the disk its hints select, then, when the
// task carries one, the config drive at the very end of the disk (checked
// to fit before anything is written). An image with a chunk manifest
// (Image.ManifestURL) is written as verified chunks (provisionChunks);
// any other is streamed from Image.URL (provisionStream).
func (r *Runner) Provision(ctx context.Context, t agentapi.Task, report func(agentapi.Progress)) (agentapi.Result, error) {
	var res agentapi.Result
	img := t.Image
	if img == nil {
		return res, fmt.Errorf("provision: task has no image")
	}
	disk, err := SelectDisk(r.Disks(), t.RootDeviceHints, t.DiskNeed())
	if err != nil {
		if d, e2 := SelectDisk(r.Disks(), t.RootDeviceHints, img.VirtualSize); e2 == nil && t.ConfigDrive != nil {
			return res, fmt.Errorf("provision: disk %s has %d bytes: enough for the image (%d) but not for the image and the %d-byte config drive after it (%d in all); use a larger disk or --config-drive none",
				d.Name, d.SizeBytes, img.VirtualSize, t.ConfigDrive.SizeBytes, t.DiskNeed())
		}
		return res, fmt.Errorf("provision: %w", err)
	}
	dev := r.devPath(disk.Name)
	res.Disk = dev
	p := provision{task: t, img: img, disk: disk, dev: dev, start: time.Now(), report: report}
	if img.ManifestURL != "" {
		p.log = r.log().With("disk", dev, "manifest", img.ManifestURL)
	} else {
		p.log = r.log().With("disk", dev, "url", img.URL)
	}
	p.log.Info("provisioning", "virtual_size", img.VirtualSize, "disk_size", disk.SizeBytes, "chunks", img.ManifestURL != "", "delta", img.Delta)
	report(progressFrom(agentapi.PhaseStarting, 0, 0, img.VirtualSize, p.start))

	var last agentapi.Progress
	if img.ManifestURL != "" {
		last, err = r.provisionChunks(ctx, p, &res)
	} else {
		last, err = r.provisionStream(ctx, p, &res)
	}
	if err != nil {
		return res, err
	}
	if err := r.appendConfigDrive(p, last, &res); err != nil {
		return res, err
	}
	p.log.Info("provisioned", "sha256", res.SHA256, "bytes", res.BytesWritten, "skipped", res.BytesSkipped, "seconds", time.Since(p.start).Seconds())
	last.Phase = agentapi.PhaseDone
	last.Time = time.Now()
	report(last)
	return res, nil
}

// provisionStream streams the image: one HTTP download (resumed across
// dropped connections) through imaging.Open's converter into
// imaging.Write, which writes the raw disk, re-reads the partition table
// and computes the SHA-256 that is then checked against the task's. It
// returns the last progress (phase verifying).
func (r *Runner) provisionStream(ctx context.Context, p provision, res *agentapi.Result) (agentapi.Progress, error) {
	img, dev := p.img, p.dev
	var last agentapi.Progress
	ro := r.Resume
	if ro.Client == nil {
		ro.Client = r.HTTP
	}
	if ro.Log == nil {
		ro.Log = p.log
	}
	src, err := OpenURL(ctx, img.URL, ro)
	if err != nil {
		return last, fmt.Errorf("provision: %w", err)
	}
	defer src.Close()
	in := imaging.NewCountingReader(src)
	// Nothing larger than the disk is accepted; a raw image has no
	// declared size (-1) and is checked by the size it produced.
	s, err := imaging.Open(in, imaging.Options{MaxVirtualSize: p.disk.SizeBytes})
	if err != nil {
		return last, fmt.Errorf("provision: open image: %w", err)
	}
	if vs := s.Info().VirtualSize; vs >= 0 && vs != img.VirtualSize {
		return last, fmt.Errorf("provision: image declares virtual size %d, task says %d", vs, img.VirtualSize)
	}
	f, err := imaging.OpenTarget(dev)
	if err != nil {
		return last, fmt.Errorf("provision: %w", err)
	}
	defer f.Close()
	wr, err := imaging.Write(ctx, s, f, imaging.WriteOptions{
		Input: in,
		Progress: func(ip imaging.Progress) {
			p.report(progressFrom(agentapi.PhaseWriting, ip.BytesRead, ip.Position, img.VirtualSize, p.start))
		},
	})
	res.BytesWritten = wr.Size
	if err != nil {
		return last, fmt.Errorf("provision: write %s: %w", dev, err)
	}
	if err := f.Close(); err != nil {
		return last, fmt.Errorf("provision: close %s: %w", dev, err)
	}
	res.SHA256 = wr.SHA256
	if wr.Size != img.VirtualSize {
		return last, fmt.Errorf("provision: image produced %d bytes of raw disk, task says %d", wr.Size, img.VirtualSize)
	}
	last = progressFrom(agentapi.PhaseVerifying, in.Count(), wr.Size, img.VirtualSize, p.start)
	p.report(last)
	if img.SHA256 != "" && wr.SHA256 != img.SHA256 {
		return last, fmt.Errorf("provision: raw sha256 %s, task expects %s", wr.SHA256, img.SHA256)
	}
	p.log.Info("image streamed", "sha256", wr.SHA256, "bytes", wr.Size, "reconnects", src.Reconnects)
	return last, nil
}

// appendConfigDrive writes the task's config drive (if any) after the
// verified image, whichever way the image was written.
func (r *Runner) appendConfigDrive(p provision, last agentapi.Progress, res *agentapi.Result) error {
	cd := p.task.ConfigDrive
	if cd == nil {
		return nil
	}
	last.Phase = agentapi.PhaseConfigDrive
	last.Time = time.Now()
	p.report(last)
	part, err := writeConfigDrive(p.dev, p.disk.SizeBytes, *cd)
	if err != nil {
		return fmt.Errorf("provision: image written and verified, but the %s config drive failed: %w", cd.Format, err)
	}
	res.ConfigDrive = r.devPath(configdrive.PartitionDevice(p.disk.Name, part.Partition))
	p.log.Info("config drive written", "format", cd.Format, "partition", res.ConfigDrive, "table", part.Table,
		"start", part.Start, "size", part.Size, "files", len(cd.Files))
	return nil
}

// writeConfigDrive appends the config drive to the disk at dev, whose
// size is diskSize (a regular file standing in for a disk in tests is
// extended to it).
func writeConfigDrive(dev string, diskSize int64, cd agentapi.ConfigDrive) (configdrive.Result, error) {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return configdrive.Result{}, err
	}
	res, err := configdrive.Write(f, diskSize, cd)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", dev, cerr)
	}
	return res, err
}

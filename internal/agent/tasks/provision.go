package tasks

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/metal-iaas/metal/internal/agent/configdrive"
	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/imaging"
)

// Provision streams t.Image onto the disk its hints select: one HTTP
// download (resumed across dropped connections) through imaging.Open's
// converter into imaging.Write, which writes the raw disk, re-reads the
// partition table and computes the SHA-256 that is then checked against
// the task's; then, when the task carries one, the config drive goes at
// the very end of the disk (checked to fit before anything is written).
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
	log := r.log().With("disk", dev, "url", img.URL)
	log.Info("provisioning", "virtual_size", img.VirtualSize, "disk_size", disk.SizeBytes)
	start := time.Now()
	report(progressFrom(agentapi.PhaseStarting, 0, 0, img.VirtualSize, start))

	ro := r.Resume
	if ro.Client == nil {
		ro.Client = r.HTTP
	}
	if ro.Log == nil {
		ro.Log = log
	}
	src, err := OpenURL(ctx, img.URL, ro)
	if err != nil {
		return res, fmt.Errorf("provision: %w", err)
	}
	defer src.Close()
	in := imaging.NewCountingReader(src)
	// Nothing larger than the disk is accepted; a raw image has no
	// declared size (-1) and is checked by the size it produced.
	s, err := imaging.Open(in, imaging.Options{MaxVirtualSize: disk.SizeBytes})
	if err != nil {
		return res, fmt.Errorf("provision: open image: %w", err)
	}
	if vs := s.Info().VirtualSize; vs >= 0 && vs != img.VirtualSize {
		return res, fmt.Errorf("provision: image declares virtual size %d, task says %d", vs, img.VirtualSize)
	}
	f, err := imaging.OpenTarget(dev)
	if err != nil {
		return res, fmt.Errorf("provision: %w", err)
	}
	defer f.Close()
	wr, err := imaging.Write(ctx, s, f, imaging.WriteOptions{
		Input: in,
		Progress: func(p imaging.Progress) {
			report(progressFrom(agentapi.PhaseWriting, p.BytesRead, p.Position, img.VirtualSize, start))
		},
	})
	res.BytesWritten = wr.Size
	if err != nil {
		return res, fmt.Errorf("provision: write %s: %w", dev, err)
	}
	if err := f.Close(); err != nil {
		return res, fmt.Errorf("provision: close %s: %w", dev, err)
	}
	res.SHA256 = wr.SHA256
	if wr.Size != img.VirtualSize {
		return res, fmt.Errorf("provision: image produced %d bytes of raw disk, task says %d", wr.Size, img.VirtualSize)
	}
	report(progressFrom(agentapi.PhaseVerifying, in.Count(), wr.Size, img.VirtualSize, start))
	if img.SHA256 != "" && wr.SHA256 != img.SHA256 {
		return res, fmt.Errorf("provision: raw sha256 %s, task expects %s", wr.SHA256, img.SHA256)
	}
	if cd := t.ConfigDrive; cd != nil {
		report(progressFrom(agentapi.PhaseConfigDrive, in.Count(), wr.Size, img.VirtualSize, start))
		part, err := writeConfigDrive(dev, disk.SizeBytes, *cd)
		if err != nil {
			return res, fmt.Errorf("provision: image written and verified, but the %s config drive failed: %w", cd.Format, err)
		}
		res.ConfigDrive = r.devPath(configdrive.PartitionDevice(disk.Name, part.Partition))
		log.Info("config drive written", "format", cd.Format, "partition", res.ConfigDrive, "table", part.Table,
			"start", part.Start, "size", part.Size, "files", len(cd.Files))
	}
	log.Info("provisioned", "sha256", wr.SHA256, "bytes", wr.Size, "reconnects", src.Reconnects, "seconds", time.Since(start).Seconds())
	report(progressFrom(agentapi.PhaseDone, in.Count(), wr.Size, img.VirtualSize, start))
	return res, nil
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

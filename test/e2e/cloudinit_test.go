package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metal-iaas/metal/test/lab"
)

var (
	debOnce sync.Once
	debImgs map[string]*lab.DebianImage
	debErr  error
)

// debianImages builds (or takes from .cache/debian) the stock Debian 12
// cloud image in both layouts.
func debianImages(t *testing.T, r *rig) map[string]*lab.DebianImage {
	t.Helper()
	debOnce.Do(func() {
		debImgs = map[string]*lab.DebianImage{}
		for _, layout := range []string{"mbr", "gpt"} {
			img, err := lab.BuildDebian(context.Background(), lab.DebianConfig{CacheDir: filepath.Join(r.sh.root, ".cache", "debian"), Layout: layout})
			if err != nil {
				debErr = err
				return
			}
			debImgs[layout] = img
		}
	})
	if debErr != nil {
		t.Fatal(debErr)
	}
	return debImgs
}

const testSSHKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ6j4Pq1yO8bW0t9k1p8bq2Yl6m3c3mJt8nQ2xq1rV7u metal-e2e"

// cloudCase is one stock-image provisioning.
type cloudCase struct {
	vm, mac, ip, layout, format, drive, datasource string
}

// TestStockDebianCloudInit provisions the stock Debian 12 cloud image —
// nothing metal-specific inside, cloud-init with Debian's default
// datasource list — with --user-data, --ssh-key and --hostname: the MBR
// image as an OVA with the default NoCloud drive, the GPT image as qcow2
// with OpenStack's config drive, both VMs at once. Its own cloud-init
// must find the drive on first boot (console: the datasource, the
// hostname at the login prompt, the runcmd marker), and the disk read
// offline afterwards must show the hostname, the key in the default
// user's authorized_keys, the static address from the reservation, the
// root partition grown past the image, and clean partition tables.
func TestStockDebianCloudInit(t *testing.T) {
	r := newRig(t)
	imgs := debianImages(t, r)
	keyFile := filepath.Join(r.dir, "id.pub")
	if err := os.WriteFile(keyFile, []byte("# operator key\n"+testSSHKey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []cloudCase{
		{"deb-mbr", "52:54:00:e2:d0:01", "10.66.0.21", "mbr", "ova", "nocloud", "DataSourceNoCloud"},
		{"deb-gpt", "52:54:00:e2:d0:02", "10.66.0.22", "gpt", "qcow2", "configdrive", "DataSourceConfigDrive"},
	}
	vms := map[string]*lab.VM{}
	for _, c := range cases {
		img := imgs[c.layout]
		file := img.QCOW2
		if c.format == "ova" {
			file = img.OVA
		}
		r.mustCtl("image", "upload", file, "--name", "debian-"+c.layout)
		v, err := r.lab.AddVM(context.Background(), lab.VMConfig{Name: c.vm, MAC: c.mac, DiskBytes: img.SizeBytes + 1<<30, MemMiB: 768})
		if err != nil {
			t.Fatal(err)
		}
		r.mustCtl("machine", "add", c.vm, "--mac", c.mac, "--bmc", v.BMCURL(), "--ip", c.ip)
		r.mustCtl("machine", "edit", c.vm, "--state", "ready")
		vms[c.vm] = v
	}
	userData := poweroffUserData(t, r.dir, `echo "METAL-RUNCMD-OK $(hostname)" | tee /var/tmp/metal-runcmd > /dev/ttyS0`)
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			out, err := r.ctl(10*time.Minute, "provision", c.vm, "--image", "debian-"+c.layout, "--wait", "--timeout", "9m",
				"--user-data", userData, "--ssh-key", keyFile, "--hostname", c.vm+".lab.example", "--config-drive", c.drive)
			t.Logf("%s: metalctl provision --wait (%.0f s):\n%s", c.vm, time.Since(start).Seconds(), tail(out, 800))
			if err != nil {
				t.Errorf("%s: metalctl provision: %v", c.vm, err)
				return
			}
			checkCloudBoot(t, r, vms[c.vm], c, imgs[c.layout], start)
		}()
	}
	wg.Wait()
}

// poweroffUserData writes a #cloud-config user-data file whose runcmd
// runs the shell command cmd (a marker to a file and the console), after
// which cloud-init powers the machine off cleanly (its last module), so
// that the disk can be read offline with its journal checkpointed. It
// returns the file's path.
func poweroffUserData(t *testing.T, dir, cmd string) string {
	t.Helper()
	if strings.Contains(cmd, "'") {
		t.Fatalf("runcmd %q: no single quotes", cmd)
	}
	p := filepath.Join(dir, "user-data")
	// The secret is what no other host may ever read (runAttacks).
	if err := os.WriteFile(p, []byte("#cloud-config\n# secret: hunter2\nruncmd:\n  - [sh, -c, '"+cmd+"']\n"+
		"power_state:\n  mode: poweroff\n  delay: now\n  condition: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func checkCloudBoot(t *testing.T, r *rig, v *lab.VM, c cloudCase, img *lab.DebianImage, start time.Time) {
	ctx := context.Background()
	host := c.vm + ".lab.example"
	var j struct {
		Params struct {
			ConfigDrive string   `json:"config_drive"`
			SSHKeys     []string `json:"ssh_keys"`
		} `json:"params"`
	}
	r.ctlJSON(&j, "jobs", "show", lastJobID(t, r, c.vm))
	if j.Params.ConfigDrive != c.drive || len(j.Params.SSHKeys) != 1 {
		t.Errorf("%s: jobs show params %+v, want config_drive %s and one key", c.vm, j.Params, c.drive)
	}
	// In order on the console: cloud-init's runcmd (hostname set), its
	// final message naming the datasource, the clean power-off.
	at := 0
	for _, want := range []string{"METAL-RUNCMD-OK " + c.vm, "Datasource " + c.datasource, "reboot: Power down"} {
		var err error
		if at, err = v.WaitSerial(ctx, want, at, 6*time.Minute); err != nil {
			t.Errorf("%s: console never showed %q: %v\nserial tail:\n%s", c.vm, want, err, tail(v.SerialText(), 4000))
			return
		}
	}
	t.Logf("%s: provision → cloud-init done and powered off in %.0f s", c.vm, time.Since(start).Seconds())
	time.Sleep(2 * time.Second) // QEMU exits after the guest's power-off
	checkCloudDisk(t, v.Disk, c, img, host)
}

// checkCloudDisk reads the provisioned disk offline.
func checkCloudDisk(t *testing.T, disk string, c cloudCase, img *lab.DebianImage, host string) {
	ctx := context.Background()
	if out, err := lab.Output(ctx, "sfdisk", "--verify", disk); err != nil {
		t.Errorf("%s: sfdisk --verify: %v\n%s", c.vm, err, out)
	}
	if c.layout == "gpt" {
		if out, err := lab.Output(ctx, "sgdisk", "-v", disk); err != nil || !strings.Contains(out, "No problems found") {
			t.Errorf("%s: sgdisk -v: %v\n%s", c.vm, err, out)
		}
	}
	js, err := lab.Output(ctx, "sfdisk", "-J", disk)
	if err != nil {
		t.Fatal(err)
	}
	var pt sfdiskTable
	if err := json.Unmarshal([]byte(js), &pt); err != nil {
		t.Fatal(err)
	}
	root, drive := pt.part(fmt.Sprintf("%s%d", disk, img.RootPartition)), pt.last()
	if root == nil || drive == nil || drive == root {
		t.Fatalf("%s: partitions %s", c.vm, js)
	}
	imgRootEnd := img.SizeBytes / 512
	if end := root.Start + root.Size; end <= imgRootEnd-34 || end > drive.Start {
		t.Errorf("%s: root partition ends at sector %d: want it grown past the image's %d, up to the config drive at %d", c.vm, end, imgRootEnd, drive.Start)
	}
	fs := fmt.Sprintf("%s?offset=%d", disk, root.Start*512)
	cat := func(p string) string {
		out, err := exec.CommandContext(ctx, "debugfs", "-R", "cat "+p, fs).Output()
		if err != nil {
			t.Errorf("%s: debugfs cat %s: %v", c.vm, p, err)
		}
		return string(out)
	}
	if got := strings.TrimSpace(cat("/etc/hostname")); got != c.vm && got != host {
		t.Errorf("%s: /etc/hostname %q, want %s", c.vm, got, host)
	}
	if got := cat("/home/debian/.ssh/authorized_keys"); !strings.Contains(got, testSSHKey) {
		t.Errorf("%s: the default user's authorized_keys %q lacks the key", c.vm, got)
	}
	if got := cat("/var/tmp/metal-runcmd"); !strings.Contains(got, "METAL-RUNCMD-OK "+c.vm) {
		t.Errorf("%s: runcmd marker %q", c.vm, got)
	}
	if got := cat("/etc/network/interfaces.d/50-cloud-init"); !strings.Contains(got, "address "+c.ip+"/24") && !strings.Contains(got, "address "+c.ip) {
		t.Errorf("%s: cloud-init's network configuration has no static %s:\n%s", c.vm, c.ip, got)
	}
	if got := cat("/var/log/cloud-init.log"); !strings.Contains(got, c.datasource) {
		t.Errorf("%s: cloud-init.log does not name %s", c.vm, c.datasource)
	}
}

type sfdiskPart struct {
	Node        string
	Start, Size int64
}

type sfdiskTable struct {
	PartitionTable struct {
		Partitions []sfdiskPart `json:"partitions"`
	} `json:"partitiontable"`
}

func (s sfdiskTable) part(node string) *sfdiskPart {
	for i := range s.PartitionTable.Partitions {
		if s.PartitionTable.Partitions[i].Node == node {
			return &s.PartitionTable.Partitions[i]
		}
	}
	return nil
}

// last is the partition that ends last on the disk.
func (s sfdiskTable) last() *sfdiskPart {
	var l *sfdiskPart
	for i := range s.PartitionTable.Partitions {
		p := &s.PartitionTable.Partitions[i]
		if l == nil || p.Start+p.Size > l.Start+l.Size {
			l = p
		}
	}
	return l
}

func lastJobID(t *testing.T, r *rig, machine string) string {
	t.Helper()
	var js []struct {
		ID int64 `json:"id"`
	}
	r.ctlJSON(&js, "jobs", machine)
	if len(js) == 0 {
		t.Fatalf("no jobs for %s", machine)
	}
	return fmt.Sprint(js[0].ID)
}

package configdrive

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/test/testenv"
)

const mib = 1 << 20

func nocloud() agentapi.ConfigDrive {
	return agentapi.ConfigDrive{Format: agentapi.ConfigDriveNoCloud, Label: "CIDATA", SizeBytes: agentapi.DefaultConfigDriveSize,
		Files: []agentapi.File{
			{Path: "meta-data", Data: []byte("instance-id: m1-7\nlocal-hostname: m1\n")},
			{Path: "user-data", Data: []byte("#cloud-config\nruncmd:\n  - echo hi\n")},
			{Path: "vendor-data", Data: nil},
			{Path: "network-config", Data: []byte("version: 2\n")},
		}}
}

func openstack() agentapi.ConfigDrive {
	return agentapi.ConfigDrive{Format: agentapi.ConfigDriveOpenStack, Label: "CONFIG-2", SizeBytes: agentapi.DefaultConfigDriveSize,
		Files: []agentapi.File{
			{Path: "openstack/latest/meta_data.json", Data: []byte(`{"uuid":"m1-7"}`)},
			{Path: "openstack/latest/user_data", Data: bytes.Repeat([]byte("x"), 70000)},
			{Path: "openstack/latest/network_data.json", Data: []byte(`{"links":[]}`)},
		}}
}

// image makes a disk image of n bytes with boot code in its first 440
// bytes and a partition table written by sfdisk from script.
func image(t *testing.T, n int64, script string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.raw")
	boot := bytes.Repeat([]byte{0xeb, 0x63, 0x90}, 440/3+1)[:440]
	if err := os.WriteFile(p, boot, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, n); err != nil {
		t.Fatal(err)
	}
	run(t, script, "sfdisk", "--no-reread", "--no-tell-kernel", "-q", p)
	return p
}

func run(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func write(t *testing.T, p string, disk int64, d agentapi.ConfigDrive) (Result, error) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Write(f, disk, d)
}

type sfdiskJSON struct {
	PartitionTable struct {
		Label      string `json:"label"`
		Partitions []struct {
			Node  string `json:"node"`
			Start int64  `json:"start"`
			Size  int64  `json:"size"`
			Type  string `json:"type"`
			Name  string `json:"name"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func tools(t *testing.T) {
	for tool, pkg := range map[string]string{"sfdisk": "fdisk", "sgdisk": "gdisk", "blkid": "util-linux", "mtype": "mtools", "fsck.fat": "dosfstools"} {
		testenv.Tool(t, tool, pkg)
	}
}

// TestAppend writes both formats onto MBR and GPT images on a disk larger
// than the image, then checks the result with the real tools: the tables
// verify clean (GPT's backup at the new end of the disk), the new
// partition is the last thing on the disk, blkid sees vfat with the
// label, mtools reads the files back byte for byte, fsck.fat finds
// nothing, and the image's boot code and first partition are untouched.
func TestAppend(t *testing.T) {
	tools(t)
	const img, disk = 64 * mib, 512 * mib
	for _, c := range []struct {
		name, label string
		script      string
		drive       agentapi.ConfigDrive
		wantPart    int
	}{
		{"mbr-nocloud", "dos", "label: dos\nstart=2048, type=83, bootable\n", nocloud(), 2},
		{"mbr-gap-slot", "dos", "label: dos\nstart=2048, size=20MiB, type=83\nstart=43008, size=10MiB, type=82\n", openstack(), 3},
		{"gpt-nocloud", "gpt", "label: gpt\nstart=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649\nstart=4096, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n", nocloud(), 3},
		{"gpt-configdrive", "gpt", "label: gpt\nstart=2048, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n", openstack(), 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := image(t, img, c.script)
			before, _ := os.ReadFile(p)
			res, err := write(t, p, disk, c.drive)
			if err != nil {
				t.Fatal(err)
			}
			if res.Table != map[string]string{"dos": "mbr", "gpt": "gpt"}[c.label] || res.Partition != c.wantPart || res.Size != c.drive.SizeBytes {
				t.Fatalf("result %+v, want table %s partition %d size %d", res, c.label, c.wantPart, c.drive.SizeBytes)
			}
			if c.label == "gpt" {
				out := run(t, "", "sgdisk", "-v", p)
				if !strings.Contains(out, "No problems found") {
					t.Fatalf("sgdisk -v:\n%s", out)
				}
			}
			run(t, "", "sfdisk", "--verify", p)
			var js sfdiskJSON
			if err := json.Unmarshal([]byte(run(t, "", "sfdisk", "-J", p)), &js); err != nil {
				t.Fatal(err)
			}
			parts := js.PartitionTable.Partitions
			last := parts[len(parts)-1]
			if last.Node != fmt.Sprintf("%s%d", p, c.wantPart) || last.Start*512 != res.Start || last.Size*512 != c.drive.SizeBytes {
				t.Fatalf("last partition %+v, want %d at %d", last, c.wantPart, res.Start)
			}
			// The drive ends within a MiB of the disk's end (GPT's backup
			// takes 33 sectors; the start is MiB-aligned).
			if end := res.Start + res.Size; end > disk || disk-end > mib {
				t.Fatalf("drive ends at %d on a %d-byte disk", end, disk)
			}
			after, _ := os.ReadFile(p)
			if int64(len(after)) != disk {
				t.Fatalf("disk is %d bytes, want %d", len(after), disk)
			}
			if !bytes.Equal(before[:440], after[:440]) {
				t.Fatal("boot code in bytes 0–439 changed")
			}
			if !bytes.Equal(before[1*mib:img-mib], after[1*mib:img-mib]) {
				t.Fatal("the image's partitions changed")
			}
			probe := run(t, "", "blkid", "-p", "-O", fmt.Sprint(res.Start), "-o", "export", p)
			if !strings.Contains(probe, "TYPE=vfat") || !strings.Contains(probe, "LABEL="+c.drive.Label) {
				t.Fatalf("blkid: %s", probe)
			}
			at := fmt.Sprintf("%s@@%d", p, res.Start)
			for _, f := range c.drive.Files {
				got := run(t, "", "mtype", "-i", at, "::"+f.Path)
				if got != string(f.Data) {
					t.Errorf("%s reads back %d bytes %.40q, want %d bytes", f.Path, len(got), got, len(f.Data))
				}
			}
			part := filepath.Join(t.TempDir(), "part")
			if err := os.WriteFile(part, after[res.Start:res.Start+res.Size], 0o644); err != nil {
				t.Fatal(err)
			}
			run(t, "", "fsck.fat", "-n", part)
		})
	}
}

// TestRefused: what cannot take a drive fails with an error that says
// why, and leaves the disk as it was.
func TestRefused(t *testing.T) {
	tools(t)
	for _, c := range []struct {
		name   string
		script string // "" for no partition table
		disk   int64
		want   error
	}{
		{"no table", "", 256 * mib, ErrNoTable},
		{"four primaries", "label: dos\nstart=2048,size=2048\nstart=4096,size=2048\nstart=6144,size=2048\nstart=8192,type=83\n", 256 * mib, ErrNoSlot},
		{"mbr no room", "label: dos\nstart=2048, type=83\n", 64 * mib, ErrNoRoom},
		{"gpt no room", "label: gpt\nstart=2048, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n", 64*mib + 32*mib, ErrNoRoom},
	} {
		t.Run(c.name, func(t *testing.T) {
			var p string
			if c.script == "" {
				p = filepath.Join(t.TempDir(), "bare")
				if err := os.WriteFile(p, bytes.Repeat([]byte{7}, 64*mib), 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				p = image(t, 64*mib, c.script)
			}
			before, _ := os.ReadFile(p)
			_, err := write(t, p, c.disk, nocloud())
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			t.Logf("refused: %v", err)
			after, _ := os.ReadFile(p)
			if !bytes.Equal(before, after[:len(before)]) {
				t.Fatal("a refused config drive changed the disk")
			}
		})
	}
}

func TestPartitionDevice(t *testing.T) {
	for in, want := range map[string]string{"vda": "vda2", "sda": "sda2", "nvme0n1": "nvme0n1p2", "mmcblk0": "mmcblk0p2"} {
		if got := PartitionDevice(in, 2); got != want {
			t.Errorf("PartitionDevice(%s, 2) = %s, want %s", in, got, want)
		}
	}
}

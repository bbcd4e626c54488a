package e2e

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/pkg/ocidisk"
	"github.com/metal-iaas/metal/test/lab"
	"github.com/metal-iaas/metal/test/registry"
)

// TestProvisionVHDThenQCOW2ZST inspects a new machine (the agent reports
// its hardware, the BMC powers it off, the machine is ready), provisions
// the dynamic VHD, deprovisions
// (the agent wipes the partition table; the machine returns to ready),
// then provisions the zstd-compressed qcow2 onto the same VM. Machines
// reach metald's images through a TCP proxy (metald --image-url) that
// cuts the first image download after 2 MiB: the agent must resume it
// with a Range request. The zstd qcow2 comes from an OCI registry: pushed
// by skopeo as a KubeVirt containerDisk to a docker-registry in the lab's
// namespace and imported by metald (metalctl image import).
func TestProvisionVHDThenQCOW2ZST(t *testing.T) {
	t.Parallel() // one VM: two such tests share the 2 cores
	const proxyAddr = lab.BridgeIP + ":8081"
	r := newRigCfg(t, lab.MetaldConfig{ImageURL: "http://" + proxyAddr,
		// The image file itself, streamed and resumed with Range (chunks are
		// the other tests' path).
		Extra: []string{"--image-chunks=false"}})
	proxy, err := r.lab.StartCutProxy(proxyAddr, lab.BridgeIP+":8080", "/images/", 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	img := testImage(t, r)
	v := r.enrolVM("vm1", mac1, ip1, 1<<30)
	out, err := r.ctl(5*time.Minute, "inspect", "vm1", "--wait", "--timeout", "4m")
	t.Logf("metalctl inspect --wait:\n%s", tail(out, 1000))
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	var inspected machine
	r.ctlJSON(&inspected, "machine", "show", "vm1")
	if inspected.State != "ready" || len(inspected.Hardware.Disks) == 0 || inspected.Hardware.Disks[0].Name != "vda" {
		t.Fatalf("after inspect: state %s (%s), disks %+v", inspected.State, inspected.StateReason, inspected.Hardware.Disks)
	}
	r.mustCtl("image", "upload", img.VHD, "--name", "os-vhd")
	reg := registry.Start(t, registry.Options{Addr: lab.BridgeIP + ":5000", Wrap: []string{"ip", "netns", "exec", r.lab.NS}})
	zstDisk, err := os.ReadFile(img.QCOW2ZST)
	if err != nil {
		t.Fatal(err)
	}
	layout := registry.NewLayout(t)
	layout.Tag(t, "os", layout.ContainerDisk(t, ocidisk.DefaultPlatform, "os.qcow2.zst", zstDisk, true))
	reg.Skopeo(t, layout.Src("os"), "os/qcow2zst:v1")
	r.mustCtl("image", "import", "os-qcow2zst", reg.Ref("os/qcow2zst:v1"), "--plain-http")
	var vhd, zst image
	r.ctlJSON(&vhd, "image", "show", "os-vhd")
	r.ctlJSON(&zst, "image", "show", "os-qcow2zst")
	for _, im := range []image{vhd, zst} {
		if im.RawSHA256 != img.RawSHA256 || im.VirtualSize != img.SizeBytes {
			t.Fatalf("image %s (%s): raw_sha256 %s virtual size %d, want %s %d", im.Name, im.Format, im.RawSHA256, im.VirtualSize, img.RawSHA256, img.SizeBytes)
		}
	}
	provisionAndBoot(t, r, v, "os-vhd", vhd, img.Raw)
	reqs := proxy.Requests()
	t.Logf("image requests through the proxy: %q", reqs)
	ranged := false
	for _, q := range reqs {
		ranged = ranged || strings.HasSuffix(q, "+range")
	}
	if !proxy.Cut() || len(reqs) < 2 || !ranged {
		t.Errorf("want the first image download cut and resumed with a Range request; requests %q", reqs)
	}

	out, err = r.ctl(5*time.Minute, "deprovision", "vm1", "--wait", "--timeout", "4m")
	t.Logf("metalctl deprovision --wait:\n%s", tail(out, 1000))
	if err != nil {
		t.Fatalf("deprovision: %v", err)
	}
	var m machine
	r.ctlJSON(&m, "machine", "show", "vm1")
	if m.State != "ready" {
		t.Fatalf("after deprovision the machine is %s (%s), want ready", m.State, m.StateReason)
	}
	f, err := os.Open(v.Disk)
	if err != nil {
		t.Fatal(err)
	}
	mbr := make([]byte, 512)
	_, err = f.ReadAt(mbr, 0)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mbr[446:512], make([]byte, 66)) {
		t.Errorf("after the wipe the MBR's partition table and signature are not zero: % x", mbr[446:512])
	}

	provisionAndBoot(t, r, v, "os-qcow2zst", zst, img.Raw)
}

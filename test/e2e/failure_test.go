package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/metal-iaas/metal/pkg/imaging"
	"github.com/metal-iaas/metal/test/lab"
)

// TestCorruptImage: an image that passed ingest but one of whose stored
// chunks was replaced afterwards (still valid zstd, the same chunk with
// one byte changed at 4 KiB, after the MBR) is refused chunk by chunk by
// the agent, which verifies every chunk against the manifest: it
// refetches, gives up naming the chunk, and the job fails with the
// machine failed and the reason. Nothing of the bad chunk counts.
func TestCorruptImage(t *testing.T) {
	t.Parallel() // one VM: two such tests share the 2 cores
	r := newRig(t)
	img := testImage(t, r)
	v := r.addVM("vm1", mac1, ip1, 1<<30)
	r.mustCtl("image", "upload", img.QCOW2, "--name", "os-qcow2")
	images := filepath.Join(r.dir, "metald-data", "images")
	b, err := os.ReadFile(filepath.Join(images, "os-qcow2.manifest.json"))
	if err != nil {
		t.Fatalf("stored manifest: %v", err)
	}
	var man imaging.Manifest
	if err := json.Unmarshal(b, &man); err != nil || man.Chunks[0] == "" {
		t.Fatalf("manifest: %v %q", err, man.Chunks)
	}
	raw, err := os.ReadFile(img.Raw)
	if err != nil {
		t.Fatal(err)
	}
	bad := raw[:man.ChunkSize]
	bad[4096] ^= 0x5a
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	d := man.Chunks[0]
	if err := os.WriteFile(filepath.Join(images, "chunks", d[:2], d+".zst"), enc.EncodeAll(bad, nil), 0o640); err != nil {
		t.Fatalf("replacing chunk %s: %v", d, err)
	}
	out, err := r.ctl(6*time.Minute, "provision", "vm1", "--image", "os-qcow2", "--wait", "--timeout", "5m")
	t.Logf("metalctl provision --wait:\n%s", tail(out, 1500))
	if err == nil {
		t.Fatal("provision of a corrupt image exited 0")
	}
	var m machine
	r.ctlJSON(&m, "machine", "show", "vm1")
	if m.State != "failed" || !strings.Contains(m.StateReason, "chunk 0") {
		t.Fatalf("machine is %s (%q), want failed naming the refused chunk", m.State, m.StateReason)
	}
	t.Logf("failed as expected: %s", m.StateReason)
	_ = v
}

// TestMetaldKilledMidStream: metald is SIGKILLed while the agent
// downloads and writes the image (downloads slowed to 2 MiB/s by a proxy;
// killed once 1 MiB of it went through the proxy) and
// restarted 2 s later; the agent resumes the download with a Range
// request and retries its progress and result calls; the agent retries and resumes, the job is
// resumed from the database, and provisioning completes. The image is the
// 4 GiB-capacity qcow2 (the small OS at the start, the rest zeros) on a
// VM with 384 MiB of RAM, which also shows that memory does not grow with
// the image.
func TestMetaldKilledMidStream(t *testing.T) {
	t.Parallel() // one VM: two such tests share the 2 cores
	// Agents download images through a proxy (--image-url) that slows them to
	// 2 MiB/s, so the download is still running when metald dies.
	const proxyAddr = lab.BridgeIP + ":8081"
	r := newRigCfg(t, lab.MetaldConfig{ImageURL: "http://" + proxyAddr,
		// The image file itself, streamed and resumed with Range (chunks are
		// the other tests' path).
		Extra: []string{"--image-chunks=false"}})
	proxy, err := r.lab.StartCutProxy(proxyAddr, lab.BridgeIP+":8080", "/images/", -1)
	if err != nil {
		t.Fatal(err)
	}
	proxy.SetRate(2 << 20)
	big := bigImage(t, r)
	v := r.addVM("vm1", mac1, ip1, 5<<30)
	r.mustCtl("image", "upload", big.QCOW2, "--name", "os-4g")
	var im image
	r.ctlJSON(&im, "image", "show", "os-4g")
	if im.VirtualSize != 4<<30 {
		t.Fatalf("image virtual size %d, want 4 GiB", im.VirtualSize)
	}
	stored := im.Size
	done := make(chan error, 1)
	var out string
	go func() {
		var err error
		out, err = r.ctl(8*time.Minute, "provision", "vm1", "--image", "os-4g", "--wait", "--timeout", "7m")
		done <- err
	}()
	deadline := time.Now().Add(4 * time.Minute)
	killed := false
	for !killed && time.Now().Before(deadline) {
		// Mid-stream: the proxy has delivered 1 MiB of the image and the
		// agent has not got it all.
		if n := proxy.ImageBytes(); n >= 1<<20 {
			if n >= stored {
				t.Fatalf("the proxy had delivered the whole image (%d bytes) before the kill: the download was not slowed", n)
			}
			r.md.Kill(syscall.SIGKILL)
			t.Logf("metald SIGKILLed after %d of %d image bytes went through the proxy", n, stored)
			time.Sleep(2 * time.Second)
			if err := r.md.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			killed = true
			break
		}
		select {
		case err := <-done:
			t.Fatalf("provision ended (%v) before the agent was seen streaming:\n%s", err, out)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !killed {
		t.Fatal("the agent was never seen streaming the image")
	}
	proxy.SetRate(0)
	if err := <-done; err != nil {
		t.Fatalf("provision after the metald restart: %v\n%s", err, tail(out, 2000))
	}
	t.Logf("metalctl provision --wait:\n%s", tail(out, 1500))
	var m machine
	r.ctlJSON(&m, "machine", "show", "vm1")
	if m.State != "provisioned" {
		t.Fatalf("machine is %s (%s), want provisioned", m.State, m.StateReason)
	}
	if _, err := v.WaitSerial(t.Context(), "METAL-INSTALLED-OS-OK hostname=vm1", 0, 3*time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, tail(v.SerialText(), 3000))
	}
	if err := lab.DiskHoldsImage(v.Disk, big.Raw, im.VirtualSize); err != nil {
		t.Error(err)
	}
	if !strings.Contains(out, "done") {
		t.Errorf("no finished progress line in metalctl's output")
	}
	reqs := proxy.Requests()
	ranged := false
	for _, q := range reqs {
		ranged = ranged || strings.HasSuffix(q, "+range")
	}
	t.Logf("image requests: %q", reqs)
	if !ranged {
		t.Errorf("the agent did not resume the download with a Range request after the restart: %q", reqs)
	}
}

var (
	bigOnce sync.Once
	bigImg  *lab.Image
	bigErr  error
)

// bigImage is the test OS on a 4 GiB disk (qcow2 keeps it small).
func bigImage(t *testing.T, r *rig) *lab.Image {
	t.Helper()
	bigOnce.Do(func() {
		bigImg, bigErr = lab.BuildImage(t.Context(), lab.ImageConfig{Dir: filepath.Join(r.sh.dir, "img4g"),
			KernelDir: r.sh.kernel, Init: r.sh.bins.InstalledInit, MetadataURL: r.md.URL, SizeBytes: 4 << 30, QCOW2Only: true})
	})
	if bigErr != nil {
		t.Fatal(bigErr)
	}
	return bigImg
}

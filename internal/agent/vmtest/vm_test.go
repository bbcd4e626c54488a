package vmtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metal-iaas/metal/internal/agent/agenttest"
	"github.com/metal-iaas/metal/pkg/agentapi"
)

const (
	vmMAC      = "52:54:00:6d:61:01"
	vmMemMiB   = 256
	diskSize   = 400 << 20
	garbageLen = 64 << 20 // the disk starts with this much 0xa5, then holes
	imgSize    = 24 << 20
	// bigSize is more raw disk than the VM has RAM: provisioning it proves
	// the agent streams (SPEC: memory independent of image size).
	bigSize = 320 << 20
)

// TestAgentInQEMU boots the initramfs built from Debian's kernel and the
// agent, and checks: registration with an inventory naming the virtio disk
// and NIC; a provision task with a qcow2 image served over HTTP that drops
// the connection once (the agent resumes with Range), after which the VM's
// disk equals the raw image and the reported SHA-256 matches; a wipe task
// that zeroes the partition table and partition signatures but nothing
// else; power-off on request.
func TestAgentInQEMU(t *testing.T) {
	need(t, os.Geteuid() == 0, "root", "run the VM test as root (network namespaces, tap)")
	for _, tool := range []string{"qemu-system-x86_64", "qemu-img", "dnsmasq", "ip", "sfdisk", "apt-get", "dpkg", "depmod"} {
		need(t, have(tool), tool, "apt-get install -y qemu-system-x86 qemu-utils dnsmasq-base iproute2 fdisk kmod")
	}
	_, err := os.Stat("/dev/net/tun")
	need(t, err == nil, "/dev/net/tun", "load the tun module")
	dir := t.TempDir()

	kdir, initrd := artifacts(t)

	// The image: a partitioned raw disk with data in both partitions and
	// holes between, converted to qcow2.
	raw := makeRawImage(t, dir)
	qcow := filepath.Join(dir, "image.qcow2")
	run(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow)
	rawBytes, _ := os.ReadFile(raw)
	sum := sha256.Sum256(rawBytes)
	rawSHA := hex.EncodeToString(sum[:])

	// VM disk: garbage everywhere, so that a skipped write shows.
	disk := filepath.Join(dir, "disk.raw")
	garbage := bytes.Repeat([]byte{0xa5}, garbageLen)
	if err := os.WriteFile(disk, garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, diskSize); err != nil {
		t.Fatal(err)
	}
	bigQcow, bigSHA := makeBigImage(t, dir)

	ns := newNetns(t, "mtagent")
	ns.dnsmasq(t, dir)
	srv := agenttest.New("vm-agent-1")
	var imageGets, drops atomic.Int32
	mux := http.NewServeMux()
	mux.Handle(agentapi.PathPrefix+"/", srv)
	mux.HandleFunc("/images/image.qcow2", func(w http.ResponseWriter, r *http.Request) {
		imageGets.Add(1)
		b, err := os.ReadFile(qcow)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if r.Header.Get("Range") == "" && drops.Add(1) == 1 {
			// First download: send the headers and 40 % of the body, then
			// cut the connection.
			w.Header().Set("Content-Length", itoa(len(b)))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(b[:len(b)*2/5])
			w.(http.Flusher).Flush()
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		http.ServeContent(w, r, "image.qcow2", time.Unix(1700000000, 0), bytes.NewReader(b))
	})
	mux.HandleFunc("/images/big.qcow2", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, bigQcow)
	})
	ln := ns.listen(t, net.JoinHostPort(ns.addr.String(), "0"))
	hs := &http.Server{Handler: mux}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	base := "http://" + ln.Addr().String()

	// The uncompressed ELF kernel boots through its PVH entry without the
	// decompression that costs seconds under TCG.
	kernel := filepath.Join(kdir, "vmlinux")
	start := time.Now()
	v := ns.qemu(t, dir, kernel, initrd, "metal.mac="+vmMAC+" metal.url="+base+" metal.lldp=0 quiet console=ttyS0", ns.virtioMachine(vmMAC, disk)...)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// 1. Registration with inventory.
	waitFor(ctx, t, srv, v, "registration", func() bool { return len(srv.Registrations()) > 0 })
	reg := srv.Registrations()[0]
	t.Logf("registered after %.1f s", time.Since(start).Seconds())
	if reg.MAC != vmMAC {
		t.Errorf("registered mac %q, want %q", reg.MAC, vmMAC)
	}
	inv := reg.Inventory
	var vda *agentapi.Disk
	for i := range inv.Disks {
		if inv.Disks[i].Name == "vda" {
			vda = &inv.Disks[i]
		}
	}
	if vda == nil || vda.SizeBytes != diskSize || !strings.HasPrefix(vda.ByPath, "pci-0000:") {
		t.Errorf("inventory disks %+v: want vda of %d bytes with a pci by-path", inv.Disks, diskSize)
	}
	var nic *agentapi.NIC
	for i := range inv.NICs {
		if inv.NICs[i].MAC == vmMAC {
			nic = &inv.NICs[i]
		}
	}
	if nic == nil || nic.Driver != "virtio_net" || !nic.Link {
		t.Errorf("inventory nics %+v: want %s with driver virtio_net and link", inv.NICs, vmMAC)
	}
	if inv.MemoryBytes < (vmMemMiB-64)<<20 || inv.MemoryBytes > vmMemMiB<<20 || inv.CPU.Threads != 1 || inv.CPU.Arch != "x86_64" {
		t.Errorf("inventory memory %d, cpu %+v", inv.MemoryBytes, inv.CPU)
	}
	if inv.DMI.SystemVendor != "QEMU" || len(inv.PCI) == 0 || !strings.HasPrefix(inv.Kernel, "6.") {
		t.Errorf("inventory dmi %+v, %d pci devices, kernel %q", inv.DMI, len(inv.PCI), inv.Kernel)
	}
	if t.Failed() {
		return
	}

	// 2. Provision: qcow2 over HTTP with one dropped connection.
	srv.Queue(agentapi.Task{
		ID: "prov-1", Kind: agentapi.TaskProvision, Token: "tok-prov-1",
		Image: &agentapi.Image{URL: base + "/images/image.qcow2", SHA256: rawSHA, VirtualSize: imgSize},
	})
	waitFor(ctx, t, srv, v, "provision result", func() bool { return len(srv.Results()) >= 1 })
	res := srv.Results()[0]
	t.Logf("provision result after %.1f s: %+v", time.Since(start).Seconds(), res)
	if !res.Success || res.SHA256 != rawSHA || res.Disk != "/dev/vda" || res.BytesWritten != imgSize {
		t.Fatalf("provision result %+v, want success on /dev/vda with sha256 %s", res, rawSHA)
	}
	if n := imageGets.Load(); n < 2 {
		t.Errorf("image fetched %d times, want a resumed second request after the drop", n)
	}
	// Reports are coalesced to at most one a second: the last one must
	// be the finished state.
	var last *agentapi.Progress
	for _, p := range srv.ProgressReports() {
		if p.TaskID == "prov-1" {
			last = &p
		}
	}
	if last == nil || last.Phase != agentapi.PhaseDone || last.BytesWritten != imgSize || last.Total != imgSize || last.BytesRead == 0 {
		t.Errorf("last progress report for prov-1: %+v, want phase done with %d of %d bytes", last, imgSize, imgSize)
	}
	got, _ := os.ReadFile(disk)
	if !bytes.Equal(got[:imgSize], rawBytes) {
		t.Fatalf("disk differs from the raw image in the first %d bytes", imgSize)
	}
	if !bytes.Equal(got[imgSize:garbageLen], garbage[imgSize:]) {
		t.Errorf("provision wrote past the image's virtual size")
	}

	// 3. Wipe.
	srv.Queue(agentapi.Task{ID: "wipe-1", Kind: agentapi.TaskWipe, Token: "tok-wipe-1"})
	waitFor(ctx, t, srv, v, "wipe result", func() bool { return len(srv.Results()) >= 2 })
	res = srv.Results()[1]
	if !res.Success || res.Disk != "/dev/vda" {
		t.Fatalf("wipe result %+v", res)
	}
	got, _ = os.ReadFile(disk)
	zero := make([]byte, 1<<20)
	for _, off := range []int64{0, p1Start, p1End - 1<<20, p2Start, p2End - 1<<20, diskSize - 1<<20} {
		if !bytes.Equal(got[off:off+1<<20], zero) {
			t.Errorf("wipe left data in the MiB at %d", off)
		}
	}
	// Data inside the partitions, away from their ends, survives.
	if !bytes.Equal(got[dataOff:dataOff+dataLen], rawBytes[dataOff:dataOff+dataLen]) {
		t.Errorf("wipe destroyed data at %d that it should not touch", dataOff)
	}
	got = nil
	t.Logf("wiped after %.1f s", time.Since(start).Seconds())

	// 4. An image with more raw data than the VM has RAM, then power off.
	srv.Queue(agentapi.Task{
		ID: "prov-big", Kind: agentapi.TaskProvision, Token: "tok-prov-big", After: agentapi.AfterPowerOff,
		Image: &agentapi.Image{URL: base + "/images/big.qcow2", SHA256: bigSHA, VirtualSize: bigSize},
	})
	// metald "restarts" (answers 503) once the big write is under way and
	// stays down until the agent has tried to deliver the result: progress
	// is lost meanwhile, the result must arrive once metald is back.
	waitFor(ctx, t, srv, v, "big provision progress", func() bool {
		for _, p := range srv.ProgressReports() {
			if p.TaskID == "prov-big" && p.Phase == agentapi.PhaseWriting {
				return true
			}
		}
		return false
	})
	srv.SetUnavailable(true)
	waitFor(ctx, t, srv, v, "a refused result", func() bool { return srv.Refused(agentapi.PathResult) > 0 })
	time.Sleep(time.Second)
	srv.SetUnavailable(false)
	waitFor(ctx, t, srv, v, "big provision result", func() bool { return len(srv.Results()) >= 3 })
	res = srv.Results()[2]
	t.Logf("big provision result after %.1f s: %+v", time.Since(start).Seconds(), res)
	if !res.Success || res.SHA256 != bigSHA {
		t.Fatalf("big provision result %+v, want sha256 %s", res, bigSHA)
	}
	select {
	case <-v.exited:
	case <-ctx.Done():
		t.Fatal("VM did not power off after the task asked for it")
	}
	// The agent's peak RSS after writing more than the VM's RAM.
	serial, _ := os.ReadFile(v.serial)
	m := regexp.MustCompile(`task=prov-big kind=provision success=true .*peak_rss_kib=(\d+)`).FindSubmatch(serial)
	if m == nil {
		t.Errorf("no prov-big completion with peak_rss_kib on the console")
	} else if kib, _ := strconv.Atoi(string(m[1])); kib <= 0 || kib > 128<<10 {
		t.Errorf("agent peak RSS %d KiB while writing %d MiB, want ≤ 128 MiB", kib, bigSize>>20)
	} else {
		t.Logf("agent peak RSS %d KiB while writing %d MiB", kib, bigSize>>20)
	}
	df, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer df.Close()
	h := sha256.New()
	if _, err := io.CopyN(h, df, bigSize); err != nil {
		t.Fatal(err)
	}
	if s := hex.EncodeToString(h.Sum(nil)); s != bigSHA {
		t.Errorf("disk's first %d bytes hash to %s, want %s", int64(bigSize), s, bigSHA)
	}
	t.Logf("done after %.1f s", time.Since(start).Seconds())
}

// makeBigImage writes bigSize bytes of non-zero, compressible raw disk
// (every 64 KiB cluster a different 16-byte pattern) and converts it to a
// compressed qcow2; it returns the qcow2 path and the raw SHA-256.
func makeBigImage(t *testing.T, dir string) (string, string) {
	t.Helper()
	raw := filepath.Join(dir, "big.raw")
	f, err := os.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	w := io.MultiWriter(f, h)
	pat := make([]byte, 16)
	for c := 0; c < bigSize/(64<<10); c++ {
		for i := range pat {
			pat[i] = byte(c>>(8*(i%3))) ^ byte(i*37+1)
		}
		if _, err := w.Write(bytes.Repeat(pat, (64<<10)/16)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	q := filepath.Join(dir, "big.qcow2")
	run(t, "qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", raw, q)
	os.Remove(raw)
	return q, hex.EncodeToString(h.Sum(nil))
}

// Partition layout of the test image (bytes).
const (
	p1Start = 1 << 20
	p1End   = 12 << 20
	p2Start = 12 << 20
	p2End   = imgSize - 1<<20 // GPT backup lives in the last MiB
	dataOff = 5 << 20
	dataLen = 1 << 20
)

func makeRawImage(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "image.raw")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, imgSize); err != nil {
		t.Fatal(err)
	}
	script := "label: gpt\nstart=2048, size=" + itoa((p1End-p1Start)/512) + ", type=linux\nstart=" + itoa(p2Start/512) + ", size=" + itoa((p2End-p2Start)/512) + ", type=linux\n"
	cmd := exec.Command("sfdisk", "--no-reread", "--no-tell-kernel", p)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	blk := make([]byte, 256<<10)
	// Signature-like data at the partition starts and ends, real data in
	// the middle, holes elsewhere.
	for _, off := range []int64{p1Start, dataOff, dataOff + 768<<10, p1End - 256<<10, p2Start, 18 << 20, p2End - 256<<10} {
		for i := range blk {
			blk[i] = byte(rng.Uint32())
		}
		if _, err := f.WriteAt(blk, off); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func itoa[T int | int64](v T) string { return strconv.FormatInt(int64(v), 10) }

// waitFor polls cond until it holds, the VM exits, or ctx ends.
func waitFor(ctx context.Context, t *testing.T, srv *agenttest.Server, v *vm, what string, cond func() bool) bool {
	t.Helper()
	for !cond() {
		select {
		case <-srv.Changed():
		case <-time.After(time.Second):
		case <-v.exited:
			if cond() {
				return true
			}
			t.Fatalf("VM exited (%v) while waiting for %s", v.err, what)
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		}
	}
	return true
}

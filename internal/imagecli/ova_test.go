package imagecli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const ovfTemplate = `<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References>
%s  </References>
  <DiskSection>
    <Info>Virtual disks</Info>
%s  </DiskSection>
  <VirtualSystem ovf:id="vm">
    <Info>A virtual machine</Info>
    <Name>metal-test</Name>
  </VirtualSystem>
</Envelope>
`

type ovaDisk struct {
	id, file string
	capacity int64
}

// buildOVA packs an OVA the way RIG.md describes: tar --format=ustar, the
// descriptor first, the disks, a SHA256 manifest last. tamper, if set,
// changes the manifest digest of that file.
func buildOVA(t *testing.T, dir, name string, disks []ovaDisk, tamper string) string {
	t.Helper()
	var refs, ds strings.Builder
	for i, d := range disks {
		st, err := os.Stat(filepath.Join(dir, d.file))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&refs, "    <File ovf:id=\"file%d\" ovf:href=\"%s\" ovf:size=\"%d\"/>\n", i, d.file, st.Size())
		fmt.Fprintf(&ds, "    <Disk ovf:diskId=\"%s\" ovf:fileRef=\"file%d\" ovf:capacity=\"%d\" ovf:capacityAllocationUnits=\"byte * 2^20\" ovf:format=\"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized\"/>\n",
			d.id, i, d.capacity>>20)
	}
	ovfName := name + ".ovf"
	if err := os.WriteFile(filepath.Join(dir, ovfName), []byte(fmt.Sprintf(ovfTemplate, refs.String(), ds.String())), 0o644); err != nil {
		t.Fatal(err)
	}
	members := []string{ovfName}
	for _, d := range disks {
		members = append(members, d.file)
	}
	// sha256sum prints "HEX  NAME"; the manifest wants "SHA256(NAME)= HEX".
	var mf strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(string(run(t, dir, "sha256sum", members...))), "\n") {
		f := strings.Fields(line)
		sum := f[0]
		if f[1] == tamper {
			sum = strings.Repeat("0", 64)
		}
		fmt.Fprintf(&mf, "SHA256(%s)= %s\n", f[1], sum)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".mf"), []byte(mf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	members = append(members, name+".mf")
	ova := filepath.Join(dir, name+".ova")
	run(t, dir, "tar", append([]string{"--format=ustar", "-cf", ova}, members...)...)
	return ova
}

func makeVMDK(t *testing.T, dir, raw, name string) []byte {
	t.Helper()
	run(t, dir, "qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, filepath.Join(dir, name))
	return qemuRaw(t, dir, filepath.Join(dir, name))
}

func requireOVATools(t *testing.T) {
	requireTool(t, "qemu-img", "qemu-utils")
	requireTool(t, "tar", "tar")
	requireTool(t, "sha256sum", "coreutils")
}

// TestConvertOVA: an OVA with a streamOptimized VMDK converts to what
// qemu-img makes of the inner VMDK, from a file and from a pipe, and
// --disk picks the second disk.
func TestConvertOVA(t *testing.T) {
	requireOVATools(t)
	dir := t.TempDir()
	raw := makeRawDisk(t, dir)
	ref1 := makeVMDK(t, dir, raw, "disk1.vmdk")
	// A second, different disk: the first 8 MiB of the first one.
	raw2 := filepath.Join(dir, "small.raw")
	b, _ := os.ReadFile(raw)
	if err := os.WriteFile(raw2, b[:8<<20], 0o644); err != nil {
		t.Fatal(err)
	}
	ref2 := makeVMDK(t, dir, raw2, "disk2.vmdk")
	ova := buildOVA(t, dir, "vm", []ovaDisk{{"root", "disk1.vmdk", testDiskSize}, {"data", "disk2.vmdk", 8 << 20}}, "")

	for _, tt := range []struct {
		name  string
		args  []string
		stdin bool
		want  []byte
	}{
		{"first disk", nil, false, ref1},
		{"from a pipe", nil, true, ref1},
		{"disk by id", []string{"--disk", "data"}, false, ref2},
		{"disk by index", []string{"--disk", "1"}, true, ref2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(dir, "out.raw")
			defer os.Remove(out)
			in := ova
			var stdin *os.File
			if tt.stdin {
				in = "-"
				f, err := os.Open(ova)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				stdin = f
			}
			var stdout string
			var err error
			if stdin != nil {
				stdout, _, err = execute(t, NewConvertCmd(), stdin, append(append([]string{"--sha256"}, tt.args...), in, out)...)
			} else {
				stdout, _, err = execute(t, NewConvertCmd(), nil, append(append([]string{"--sha256"}, tt.args...), in, out)...)
			}
			if err != nil {
				t.Fatalf("convert: %v", err)
			}
			got, _ := os.ReadFile(out)
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("output (%d bytes) differs from qemu-img's conversion of the inner vmdk (%d bytes)", len(got), len(tt.want))
			}
			if sha256Line(t, stdout) != sha256Hex(tt.want) {
				t.Fatal("printed sha256 differs")
			}
		})
	}

	// The same package in the other tar dialects GNU tar writes (pax
	// headers, GNU long names) and with a "./" prefix on member names.
	for _, args := range [][]string{
		{"--format=pax", "vm.ovf", "disk1.vmdk", "disk2.vmdk", "vm.mf"},
		{"--format=gnu", "vm.ovf", "disk1.vmdk", "disk2.vmdk", "vm.mf"},
		{"--format=ustar", "./vm.ovf", "./disk1.vmdk", "./disk2.vmdk", "./vm.mf"},
	} {
		alt := filepath.Join(dir, "alt.ova")
		run(t, dir, "tar", append([]string{args[0], "-cf", alt}, args[1:]...)...)
		out := filepath.Join(dir, "alt.raw")
		if _, _, err := execute(t, NewConvertCmd(), nil, alt, out); err != nil {
			t.Fatalf("tar %v: %v", args, err)
		}
		if got, _ := os.ReadFile(out); !bytes.Equal(got, ref1) {
			t.Fatalf("tar %v: output differs", args)
		}
		os.Remove(out)
	}

	// The unpacked package: its directory or its descriptor.
	for _, in := range []string{dir, filepath.Join(dir, "vm.ovf")} {
		out := filepath.Join(dir, "unpacked.raw")
		if _, _, err := execute(t, NewConvertCmd(), nil, "--disk", "1", in, out); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got, _ := os.ReadFile(out); !bytes.Equal(got, ref2) {
			t.Fatalf("%s: output differs", in)
		}
		os.Remove(out)
	}
	output := "json"
	stdout, _, err := execute(t, NewInspectCmd(&output), nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	var dirRep Report
	if err := json.Unmarshal([]byte(stdout), &dirRep); err != nil {
		t.Fatal(err)
	}
	if dirRep.Package == nil || dirRep.Package.Manifest != "verified" || dirRep.InputBytes != -1 {
		t.Fatalf("unpacked package report %+v", dirRep)
	}

	_, _, err = execute(t, NewConvertCmd(), nil, "--disk", "nope", ova, filepath.Join(dir, "x.raw"))
	if err == nil || !strings.Contains(err.Error(), "root") || !strings.Contains(err.Error(), "data") {
		t.Fatalf("unknown disk: error should list the disks: %v", err)
	}

	// inspect lists the disks and verifies the manifest.
	stdout, _, err = execute(t, NewInspectCmd(&output), nil, ova)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	p := rep.Package
	if p == nil || len(p.Disks) != 2 || p.Disks[0].ID != "root" || p.Disks[1].Capacity != 8<<20 || p.Selected != "root" || p.Manifest != "verified" {
		t.Fatalf("package = %+v", p)
	}
	if rep.VirtualSize != testDiskSize || rep.Allocation == nil || rep.Allocation.DataBytes < nonZeroBytes {
		t.Fatalf("report = %+v", rep)
	}
}

// A manifest whose digest does not match the disk fails the conversion
// and nothing is written.
func TestConvertOVATamperedManifest(t *testing.T) {
	requireOVATools(t)
	dir := t.TempDir()
	raw := makeRawDisk(t, dir)
	makeVMDK(t, dir, raw, "disk1.vmdk")
	for _, tamper := range []string{"disk1.vmdk", "vm.ovf"} {
		ova := buildOVA(t, dir, "vm", []ovaDisk{{"root", "disk1.vmdk", testDiskSize}}, tamper)
		out := filepath.Join(dir, "out.raw")
		_, _, err := execute(t, NewConvertCmd(), nil, ova, out)
		if err == nil || !strings.Contains(err.Error(), tamper) {
			t.Fatalf("tampered digest of %s: err = %v", tamper, err)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Fatalf("tampered digest of %s: output written", tamper)
		}
		assertNoTemp(t, dir)
	}
}

// Archives with a member escaping the package or a symlink are refused
// before anything is written.
func TestConvertOVARefusesHostileTar(t *testing.T) {
	requireOVATools(t)
	dir := t.TempDir()
	pkg := filepath.Join(dir, "pkg")
	if err := os.Mkdir(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	raw := makeRawDisk(t, pkg)
	makeVMDK(t, pkg, raw, "disk1.vmdk")
	buildOVA(t, pkg, "vm", []ovaDisk{{"root", "disk1.vmdk", testDiskSize}}, "")
	if err := os.WriteFile(filepath.Join(dir, "evil"), []byte("evil"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(pkg, "link")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		members []string
		msg     string
	}{
		{"dotdot member", []string{"vm.ovf", "../evil", "disk1.vmdk", "vm.mf"}, "../evil"},
		{"symlink member", []string{"vm.ovf", "link", "disk1.vmdk", "vm.mf"}, "link"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ova := filepath.Join(dir, "evil.ova")
			run(t, pkg, "tar", append([]string{"--format=ustar", "-P", "-cf", ova}, tt.members...)...)
			out := filepath.Join(dir, "out.raw")
			_, _, err := execute(t, NewConvertCmd(), nil, ova, out)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want a refusal naming %q", err, tt.msg)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Fatal("output written")
			}
			assertNoTemp(t, dir)
		})
	}
}

// signOVA appends a .cert (openssl signature over the manifest plus a
// self-signed PEM certificate, as ovftool writes it) and re-packs the OVA.
// corrupt flips a bit of the signature.
func signOVA(t *testing.T, dir, name string, members []string, corrupt bool) string {
	t.Helper()
	requireTool(t, "openssl", "openssl")
	run(t, dir, "openssl", "req", "-x509", "-nodes", "-days", "7", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
		"-subj", "/CN=metal ova signer", "-keyout", "key.pem", "-out", "cert.pem")
	run(t, dir, "openssl", "dgst", "-sha256", "-sign", "key.pem", "-out", "sig.bin", name+".mf")
	sig, err := os.ReadFile(filepath.Join(dir, "sig.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if corrupt {
		sig[len(sig)/2] ^= 1
	}
	pemBytes, err := os.ReadFile(filepath.Join(dir, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cert := fmt.Sprintf("SHA256(%s.mf)= %x\n%s", name, sig, pemBytes)
	if err := os.WriteFile(filepath.Join(dir, name+".cert"), []byte(cert), 0o644); err != nil {
		t.Fatal(err)
	}
	ova := filepath.Join(dir, name+"-signed.ova")
	run(t, dir, "tar", append([]string{"--format=ustar", "-cf", ova}, append(members, name+".mf", name+".cert")...)...)
	return ova
}

func TestInspectSignedOVA(t *testing.T) {
	requireOVATools(t)
	dir := t.TempDir()
	raw := makeRawDisk(t, dir)
	ref := makeVMDK(t, dir, raw, "disk1.vmdk")
	buildOVA(t, dir, "vm", []ovaDisk{{"root", "disk1.vmdk", testDiskSize}}, "")
	members := []string{"vm.ovf", "disk1.vmdk"}

	ova := signOVA(t, dir, "vm", members, false)
	output := "json"
	stdout, _, err := execute(t, NewInspectCmd(&output), nil, ova)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if p := rep.Package; p == nil || p.Manifest != "verified" || !strings.Contains(p.Certificate, "signature valid") ||
		!strings.Contains(p.Certificate, "metal ova signer") || !strings.Contains(p.Certificate, "trust store") {
		t.Fatalf("package = %+v", rep.Package)
	}
	out := filepath.Join(dir, "out.raw")
	if _, _, err := execute(t, NewConvertCmd(), nil, ova, out); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, ref) {
		t.Fatal("signed OVA output differs from qemu-img's conversion")
	}
	os.Remove(out)

	bad := signOVA(t, dir, "vm", members, true)
	if _, _, err := execute(t, NewConvertCmd(), nil, bad, out); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("corrupt signature: err = %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatal("corrupt signature: output written")
	}
}

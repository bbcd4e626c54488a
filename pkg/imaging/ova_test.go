package imaging

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ovaDisk is one disk for ovfDescriptor.
type ovaDisk struct {
	id, href    string
	capacity    string // value with units below
	units       string // capacityAllocationUnits, "" for bytes
	compression string
	chunkSize   int64
	size        int64
}

func ovfDescriptor(disks ...ovaDisk) []byte {
	var files, ds strings.Builder
	for i, d := range disks {
		extra := ""
		if d.compression != "" {
			extra += fmt.Sprintf(` ovf:compression="%s"`, d.compression)
		}
		if d.chunkSize > 0 {
			extra += fmt.Sprintf(` ovf:chunkSize="%d"`, d.chunkSize)
		}
		fmt.Fprintf(&files, `    <File ovf:id="file%d" ovf:href="%s" ovf:size="%d"%s/>`+"\n", i, d.href, d.size, extra)
		units := ""
		if d.units != "" {
			units = fmt.Sprintf(` ovf:capacityAllocationUnits="%s"`, d.units)
		}
		fmt.Fprintf(&ds, `    <Disk ovf:diskId="%s" ovf:fileRef="file%d" ovf:capacity="%s"%s ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>`+"\n", d.id, i, d.capacity, units)
	}
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
  <References>
` + files.String() + `  </References>
  <DiskSection>
    <Info>Virtual disks</Info>
` + ds.String() + `  </DiskSection>
  <VirtualSystem ovf:id="vm">
    <Info>test</Info>
  </VirtualSystem>
</Envelope>
`)
}

type member struct {
	name string
	data []byte
	typ  byte
	link string
}

func writeTar(t *testing.T, path string, members []member) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, m := range members {
		typ := m.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Typeflag: typ, Linkname: m.link, Format: tar.FormatUSTAR}
		if typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write(m.data)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

func manifest(algo string, members ...member) []byte {
	var b strings.Builder
	for _, m := range members {
		var sum []byte
		if algo == "SHA1" {
			s := sha1.Sum(m.data)
			sum = s[:]
		} else {
			s := sha256.Sum256(m.data)
			sum = s[:]
		}
		fmt.Fprintf(&b, "%s(%s)= %x\n", algo, m.name, sum)
	}
	return []byte(b.String())
}

// ovaFixture makes a streamOptimized VMDK of the test disk and its
// qemu-img reference.
func ovaFixture(t *testing.T) (vmdk []byte, want string, size int64) {
	t.Helper()
	requireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	testDisk(t, raw, 4<<20+512)
	img := buildCase(t, dir, raw, corpusCase{name: "d", format: "vmdk", args: []string{"-o", "subformat=streamOptimized"}})
	want, size = qemuRef(t, img, "")
	vmdk, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return vmdk, want, size
}

func TestOVA(t *testing.T) {
	vmdk, want, size := ovaFixture(t)
	desc := ovfDescriptor(ovaDisk{id: "vmdisk1", href: "disk1.vmdk", capacity: fmt.Sprint(size), size: int64(len(vmdk))})
	ovfM := member{name: "vm.ovf", data: desc}
	diskM := member{name: "disk1.vmdk", data: vmdk}

	// The same package built by GNU tar (the real peer) with the manifest
	// before the disk, and by archive/tar with it after.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "vm.ovf"), desc, 0o644)
	os.WriteFile(filepath.Join(dir, "disk1.vmdk"), vmdk, 0o644)
	os.WriteFile(filepath.Join(dir, "vm.mf"), manifest("SHA256", ovfM, diskM), 0o644)
	gnu := filepath.Join(t.TempDir(), "gnu.ova")
	requireTool(t, "tar", "tar")
	run(t, "tar", "--format=ustar", "-C", dir, "-cf", gnu, "vm.ovf", "vm.mf", "disk1.vmdk")
	last := filepath.Join(t.TempDir(), "last.ova")
	writeTar(t, last, []member{ovfM, diskM, {name: "vm.mf", data: manifest("SHA1", ovfM, diskM)}})
	none := filepath.Join(t.TempDir(), "none.ova")
	writeTar(t, none, []member{ovfM, diskM})

	for _, c := range []struct {
		path, manifest string
	}{{gnu, "verified"}, {last, "verified"}, {none, "none"}} {
		for _, pipe := range []bool{false, true} {
			res, err := convertOurs(t, c.path, pipe, Options{})
			if err != nil {
				t.Fatalf("%s pipe=%v: %v", filepath.Base(c.path), pipe, err)
			}
			if res.SHA256 != want {
				t.Fatalf("%s: digest %s, qemu-img %s", filepath.Base(c.path), res.SHA256, want)
			}
			in := res.Info
			if in.Format != "vmdk" || in.Chain[0] != "ova" || in.Package == nil || in.Package.Selected != "vmdisk1" {
				t.Fatalf("info %+v", in)
			}
		}
		// The manifest state is final after the stream ends.
		s := openPath(t, c.path, Options{})
		drain(t, s)
		if got := s.Info().Package.Manifest; got != c.manifest {
			t.Errorf("%s: manifest %q, want %q", filepath.Base(c.path), got, c.manifest)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "vm.mf"), manifest("SHA256", ovfM, diskM), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := OpenOVFDir(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := hashStream(t, s); got != want {
		t.Fatalf("OpenOVFDir: %s, want %s", got, want)
	}
	if s.Info().Package.Manifest != "verified" || s.Info().Chain[0] != "ovf" {
		t.Errorf("OpenOVFDir info %+v", s.Info())
	}
}

func TestOVAChunkedGzipAndDiskSelection(t *testing.T) {
	vmdk, want, size := ovaFixture(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(vmdk)
	zw.Close()
	chunk := int64(gz.Len()/3 + 1)
	var chunks []member
	for i := 0; int64(i)*chunk < int64(gz.Len()); i++ {
		end := min(int64(i+1)*chunk, int64(gz.Len()))
		chunks = append(chunks, member{name: fmt.Sprintf("disk2.vmdk.%09d", i), data: gz.Bytes()[int64(i)*chunk : end]})
	}
	other := member{name: "disk1.vmdk", data: []byte("not the selected disk")}
	// Capacity in units of 512-byte blocks exercises capacityAllocationUnits.
	desc := ovfDescriptor(
		ovaDisk{id: "first", href: "disk1.vmdk", capacity: "1", units: "byte * 2^20", size: int64(len(other.data))},
		ovaDisk{id: "second", href: "disk2.vmdk", capacity: fmt.Sprint(size / 512), units: "byte * 2^9", compression: "gzip", chunkSize: chunk, size: int64(gz.Len())},
	)
	ovfM := member{name: "vm.ovf", data: desc}
	ms := append([]member{ovfM, other}, chunks...)
	ms = append(ms, member{name: "vm.mf", data: manifest("SHA256", ms...)})
	path := filepath.Join(t.TempDir(), "chunked.ova")
	writeTar(t, path, ms)
	for _, sel := range []string{"second", "1"} {
		res, err := convertOurs(t, path, true, Options{Disk: sel})
		if err != nil {
			t.Fatalf("disk %q: %v", sel, err)
		}
		if res.SHA256 != want {
			t.Fatalf("disk %q: %s, want %s", sel, res.SHA256, want)
		}
		if c := res.Info.Chain; strings.Join(c, ",") != "ova,gzip,vmdk" {
			t.Errorf("chain %v", c)
		}
	}
	if _, err := convertOurs(t, path, true, Options{Disk: "nope"}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown disk: %v", err)
	}
}

func TestOVARefusals(t *testing.T) {
	vmdk, _, size := ovaFixture(t)
	desc := ovfDescriptor(ovaDisk{id: "d", href: "disk1.vmdk", capacity: fmt.Sprint(size), size: int64(len(vmdk))})
	ovfM := member{name: "vm.ovf", data: desc}
	diskM := member{name: "disk1.vmdk", data: vmdk}
	bad := manifest("SHA256", member{name: "vm.ovf", data: []byte("another descriptor")}, diskM)
	badDisk := manifest("SHA256", ovfM, member{name: "disk1.vmdk", data: []byte("other")})
	small := ovfDescriptor(ovaDisk{id: "d", href: "disk1.vmdk", capacity: fmt.Sprint(size - 512), size: int64(len(vmdk))})

	for _, c := range []struct {
		name    string
		members []member
		atOpen  bool
		want    error
	}{
		{"descriptor not first", []member{diskM, ovfM}, true, ErrCorrupt},
		{"symlink member", []member{ovfM, {name: "evil", typ: tar.TypeSymlink, link: "/etc/passwd"}, diskM}, true, ErrHostile},
		{"hard link member", []member{ovfM, {name: "evil", typ: tar.TypeLink, link: "vm.ovf"}, diskM}, true, ErrHostile},
		{"device member", []member{ovfM, {name: "sda", typ: tar.TypeBlock}, diskM}, true, ErrHostile},
		{"dot-dot member", []member{ovfM, {name: "../escape", data: []byte("x")}, diskM}, true, ErrHostile},
		{"absolute member", []member{ovfM, {name: "/etc/cron.d/x", data: []byte("x")}, diskM}, true, ErrHostile},
		{"empty manifest", []member{ovfM, {name: "vm.mf", data: nil}, diskM}, true, ErrCorrupt},
		{"disk digest mismatch, manifest first", []member{ovfM, {name: "vm.mf", data: badDisk}, diskM}, false, ErrCorrupt},
		{"disk digest mismatch, manifest last", []member{ovfM, diskM, {name: "vm.mf", data: badDisk}}, false, ErrCorrupt},
		{"descriptor digest mismatch", []member{ovfM, {name: "vm.mf", data: bad}, diskM}, true, ErrCorrupt},
		{"symlink after disk", []member{ovfM, diskM, {name: "evil", typ: tar.TypeSymlink, link: "/"}}, false, ErrHostile},
		{"capacity below virtual size", []member{{name: "vm.ovf", data: small}, diskM}, true, ErrCorrupt},
		{"disk member missing", []member{ovfM}, true, ErrCorrupt},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.ova")
			writeTar(t, path, c.members)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			s, err := Open(f, Options{})
			if c.atOpen {
				if !errors.Is(err, c.want) {
					t.Fatalf("Open: %v, want %v", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			out, _ := os.Create(filepath.Join(t.TempDir(), "out"))
			defer out.Close()
			_, err = Write(context.Background(), s, out, WriteOptions{})
			if !errors.Is(err, c.want) {
				t.Fatalf("Write: %v, want %v", err, c.want)
			}
			t.Logf("refused at the end: %v", err)
		})
	}
}

func openPath(t *testing.T, path string, opts Options) Stream {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	s, err := Open(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func drain(t *testing.T, s Stream) {
	t.Helper()
	for {
		_, err := s.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// hashStream digests a stream's raw disk without writing it.
func hashStream(t *testing.T, s Stream) string {
	t.Helper()
	out, err := os.Create(filepath.Join(t.TempDir(), "h.raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	res, err := Write(context.Background(), s, out, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res.SHA256
}

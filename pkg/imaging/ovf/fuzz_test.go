package ovf

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	names, _ := filepath.Glob(filepath.Join("testdata", "*.ovf"))
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(diskDesc("x", "1", "byte * 2^30")))
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "b">]><Envelope/>`))
	f.Add([]byte(desc(`<DiskSection><Disk ovf:diskId="d" ovf:capacity="1"/></DiskSection>`)))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := ParseLimits(strings.NewReader(string(b)), Limits{MaxCapacity: 1 << 40})
		if err != nil {
			return
		}
		for _, d := range env.Disks {
			if d.Capacity <= 0 || d.Capacity > 1<<40 {
				t.Fatalf("disk %q capacity %d out of bounds", d.ID, d.Capacity)
			}
			if d.Href != "" && CheckHref(d.Href) != nil {
				t.Fatalf("unsafe href %q accepted", d.Href)
			}
		}
		_, _ = env.SelectDisk("")
		_, _ = env.SelectDisk("1")
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte("SHA256(disk1.vmdk)= " + strings.Repeat("0a", 32) + "\n"))
	f.Add([]byte("SHA1(vm.ovf) = " + strings.Repeat("ff", 20) + "\r\nSHA512(x)=" + strings.Repeat("00", 64)))
	f.Add([]byte("SHA256 (a(b)c) = " + strings.Repeat("12", 32)))
	f.Add([]byte("SHA256(../x)= 00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(strings.NewReader(string(b)))
		if err != nil {
			return
		}
		for _, e := range m.Entries {
			h, err := NewHash(e.Algo)
			if err != nil || h.Size() != len(e.Sum) {
				t.Fatalf("entry %+v: digest length/algorithm inconsistent (%v)", e, err)
			}
			if checkRelPath(e.Name, "name") != nil {
				t.Fatalf("unsafe name %q accepted", e.Name)
			}
		}
	})
}

func FuzzParseCertificate(f *testing.F) {
	f.Add([]byte("SHA256(pkg.mf)= abcd\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCertificate(strings.NewReader(string(b)))
		if err == nil && len(c.Chain) == 0 {
			t.Fatal("certificate without chain accepted")
		}
	})
}

func FuzzCheckTarHeader(f *testing.F) {
	f.Add("vm.ovf", byte(tar.TypeReg), int64(10))
	f.Add("../evil", byte(tar.TypeReg), int64(10))
	f.Add("link", byte(tar.TypeSymlink), int64(0))
	f.Fuzz(func(t *testing.T, name string, typ byte, size int64) {
		h := &tar.Header{Name: name, Typeflag: typ, Size: size}
		if CheckTarHeader(h) == nil {
			n := MemberName(h)
			if typ != tar.TypeReg && typ != tar.TypeRegA || size < 0 || checkRelPath(n, "n") != nil || strings.Contains(n, "..") && strings.Contains("/"+n+"/", "/../") {
				t.Fatalf("accepted %+v", h)
			}
		}
	})
}

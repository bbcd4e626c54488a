package ovf

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckTarHeader(t *testing.T) {
	for _, tt := range []struct {
		name string
		h    tar.Header
		err  error
	}{
		{"regular", tar.Header{Name: "vm.ovf", Typeflag: tar.TypeReg, Size: 10}, nil},
		{"old regular", tar.Header{Name: "vm.ovf", Typeflag: '\x00', Size: 10}, nil},
		{"dot slash", tar.Header{Name: "./disk.vmdk", Typeflag: tar.TypeReg}, nil},
		{"subdir file", tar.Header{Name: "images/disk.vmdk", Typeflag: tar.TypeReg}, nil},
		{"dir", tar.Header{Name: "images/", Typeflag: tar.TypeDir}, ErrSkip},
		{"dot dir", tar.Header{Name: "./", Typeflag: tar.TypeDir}, ErrSkip},
		{"pax global", tar.Header{Name: "pax_global_header", Typeflag: tar.TypeXGlobalHeader}, ErrSkip},
		{"dir escape", tar.Header{Name: "../x/", Typeflag: tar.TypeDir}, ErrRefused},
		{"symlink", tar.Header{Name: "disk.vmdk", Typeflag: tar.TypeSymlink, Linkname: "/dev/sda"}, ErrRefused},
		{"hardlink", tar.Header{Name: "disk.vmdk", Typeflag: tar.TypeLink, Linkname: "/etc/shadow"}, ErrRefused},
		{"char", tar.Header{Name: "c", Typeflag: tar.TypeChar}, ErrRefused},
		{"block", tar.Header{Name: "b", Typeflag: tar.TypeBlock}, ErrRefused},
		{"fifo", tar.Header{Name: "f", Typeflag: tar.TypeFifo}, ErrRefused},
		{"gnu sparse", tar.Header{Name: "s", Typeflag: tar.TypeGNUSparse}, ErrRefused},
		{"contiguous", tar.Header{Name: "s", Typeflag: tar.TypeCont}, ErrRefused},
		{"absolute", tar.Header{Name: "/etc/passwd", Typeflag: tar.TypeReg}, ErrRefused},
		{"dotdot", tar.Header{Name: "../evil", Typeflag: tar.TypeReg}, ErrRefused},
		{"inner dotdot", tar.Header{Name: "a/../../evil", Typeflag: tar.TypeReg}, ErrRefused},
		{"nul", tar.Header{Name: "a\x00b", Typeflag: tar.TypeReg}, ErrRefused},
		{"backslash", tar.Header{Name: `..\evil`, Typeflag: tar.TypeReg}, ErrRefused},
		{"empty", tar.Header{Name: "", Typeflag: tar.TypeReg}, ErrRefused},
		{"negative", tar.Header{Name: "x", Typeflag: tar.TypeReg, Size: -1}, ErrRefused},
		{"huge", tar.Header{Name: "x", Typeflag: tar.TypeReg, Size: DefaultMaxMemberSize + 1}, ErrTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.h
			err := CheckTarHeader(&h)
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("CheckTarHeader(%+v) = %v, want %v", tt.h, err, tt.err)
			}
		})
	}
	if err := CheckTarHeaderMax(&tar.Header{Name: "x", Typeflag: tar.TypeReg, Size: 101}, 100); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("limit: %v", err)
	}
	if err := CheckTarHeader(nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("nil: %v", err)
	}
	if got := MemberName(&tar.Header{Name: "./images/"}); got != "images" {
		t.Fatalf("MemberName = %q", got)
	}
}

// The real peer: archives written by GNU tar, read with archive/tar.
func TestCheckTarHeaderGNUTar(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		requireTool(t, "tar", "tar")
	}
	dir := t.TempDir()
	pkg := filepath.Join(dir, "pkg")
	must(t, os.MkdirAll(filepath.Join(pkg, "sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(pkg, "vm.ovf"), []byte("<Envelope/>"), 0o644))
	must(t, os.WriteFile(filepath.Join(pkg, "sub", "disk.vmdk"), []byte("data"), 0o644))
	must(t, os.Symlink("/etc/passwd", filepath.Join(pkg, "link")))
	must(t, os.WriteFile(filepath.Join(dir, "evil"), []byte("evil"), 0o644))

	for _, tt := range []struct {
		name string
		args []string
		want map[string]error // member name -> expected error
	}{
		{"ustar ova", []string{"--format=ustar", "-C", pkg, "-cf", "-", "vm.ovf", "sub/disk.vmdk"},
			map[string]error{"vm.ovf": nil, "sub/disk.vmdk": nil}},
		{"pax dir", []string{"--format=pax", "-C", pkg, "-cf", "-", "vm.ovf", "sub"},
			map[string]error{"vm.ovf": nil, "sub/": ErrSkip, "sub/disk.vmdk": nil}},
		{"symlink", []string{"--format=ustar", "-C", pkg, "-cf", "-", "vm.ovf", "link"},
			map[string]error{"vm.ovf": nil, "link": ErrRefused}},
		{"dotdot", []string{"--format=ustar", "-C", pkg, "-P", "-cf", "-", "vm.ovf", "../evil"},
			map[string]error{"vm.ovf": nil, "../evil": ErrRefused}},
		{"absolute", []string{"--format=gnu", "-P", "-cf", "-", filepath.Join(dir, "evil")},
			map[string]error{filepath.Join(dir, "evil"): ErrRefused}},
		{"dot prefix", []string{"--format=ustar", "-C", pkg, "-cf", "-", "./vm.ovf"},
			map[string]error{"./vm.ovf": nil}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("tar", tt.args...)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("tar %v: %v", tt.args, err)
			}
			tr := tar.NewReader(strings.NewReader(string(out)))
			seen := 0
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				want, ok := tt.want[h.Name]
				if !ok {
					t.Fatalf("unexpected member %q", h.Name)
				}
				seen++
				if got := CheckTarHeader(h); !errors.Is(got, want) || (want == nil) != (got == nil) {
					t.Errorf("%q: %v, want %v", h.Name, got, want)
				}
			}
			if seen != len(tt.want) {
				t.Errorf("saw %d members, want %d", seen, len(tt.want))
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

package ovf

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseManifest(t *testing.T) {
	s1 := sha1.Sum([]byte("a"))
	s256 := sha256.Sum256([]byte("b"))
	s512 := sha512.Sum512([]byte("c"))
	in := "SHA1(vm.ovf)= " + hex.EncodeToString(s1[:]) + "\r\n" +
		"\n" +
		"SHA256(disk1.vmdk) = " + strings.ToUpper(hex.EncodeToString(s256[:])) + "\n" +
		"SHA512(odd (name).iso)=" + hex.EncodeToString(s512[:]) // no final newline
	m, err := ParseManifest(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Entries) != 3 {
		t.Fatalf("entries = %+v", m.Entries)
	}
	for _, tt := range []struct {
		name, algo string
		sum        []byte
	}{{"vm.ovf", "SHA1", s1[:]}, {"disk1.vmdk", "SHA256", s256[:]}, {"odd (name).iso", "SHA512", s512[:]}} {
		algo, sum, ok := m.Digest(tt.name)
		if !ok || algo != tt.algo || string(sum) != string(tt.sum) {
			t.Errorf("Digest(%q) = %s %x %v", tt.name, algo, sum, ok)
		}
		h, err := NewHash(algo)
		if err != nil || h.Size() != len(sum) {
			t.Errorf("NewHash(%s): %v", algo, err)
		}
		if err := m.Check(tt.name, tt.algo, tt.sum); err != nil {
			t.Errorf("Check(%q): %v", tt.name, err)
		}
	}
	if _, _, ok := m.Digest("missing"); ok {
		t.Error("Digest(missing) ok")
	}
	if err := m.Check("missing", "SHA256", s256[:]); !errors.Is(err, ErrRefused) {
		t.Errorf("Check(missing) = %v", err)
	}
	if err := m.Check("disk1.vmdk", "SHA256", s1[:]); !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), "disk1.vmdk") {
		t.Errorf("Check(mismatch) = %v", err)
	}
	if err := m.Check("disk1.vmdk", "SHA1", s256[:]); !errors.Is(err, ErrMalformed) {
		t.Errorf("Check(algo mismatch) = %v", err)
	}
	if _, err := NewHash("MD5"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("NewHash(MD5) = %v", err)
	}
}

func TestParseManifestRefuses(t *testing.T) {
	good := hex.EncodeToString(make([]byte, 32))
	for _, tt := range []struct {
		name, in string
		err      error
	}{
		{"no parens", "SHA256 x = " + good, ErrMalformed},
		{"no equals", "SHA256(x) " + good, ErrMalformed},
		{"empty name", "SHA256()= " + good, ErrMalformed},
		{"md5", "MD5(x)= " + hex.EncodeToString(make([]byte, 16)), ErrUnsupported},
		{"short digest", "SHA256(x)= abcd", ErrMalformed},
		{"not hex", "SHA256(x)= " + strings.Repeat("zz", 32), ErrMalformed},
		{"sha1 length for sha256", "SHA256(x)= " + hex.EncodeToString(make([]byte, 20)), ErrMalformed},
		{"dup", "SHA256(x)= " + good + "\nSHA256(x)= " + good, ErrMalformed},
		{"escape", "SHA256(../x)= " + good, ErrRefused},
		{"absolute", "SHA256(/x)= " + good, ErrRefused},
		{"too big", strings.Repeat("\n", int(DefaultMaxManifestSize)+1), ErrTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseManifest(strings.NewReader(tt.in))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
		})
	}
}

// The real peer: manifest lines written by coreutils' sha256sum --tag
// ("SHA256 (name) = hex") and by openssl dgst ("SHA1(name)= hex").
func TestParseManifestFromRealTools(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"disk1.vmdk": "disk one\n", "vm.ovf": "<Envelope/>", "disk2.vmdk": "disk two"}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var mf strings.Builder
	for _, c := range [][]string{
		{"sha256sum", "--tag", "disk1.vmdk"},
		{"openssl", "dgst", "-sha1", "vm.ovf"},
		{"openssl", "dgst", "-sha512", "disk2.vmdk"},
	} {
		if _, err := exec.LookPath(c[0]); err != nil {
			requireTool(t, c[0], "coreutils and openssl")
		}
		cmd := exec.Command(c[0], c[1:]...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		mf.Write(out)
	}
	m, err := ParseManifest(strings.NewReader(mf.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, mf.String())
	}
	for n, c := range files {
		algo, _, ok := m.Digest(n)
		if !ok {
			t.Fatalf("no digest for %s in\n%s", n, mf.String())
		}
		h, err := NewHash(algo)
		if err != nil {
			t.Fatal(err)
		}
		h.Write([]byte(c))
		if err := m.Check(n, algo, h.Sum(nil)); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

func requireTool(t *testing.T, tool, pkg string) {
	t.Helper()
	if os.Getenv("METAL_REQUIRE_ALL") == "1" {
		t.Fatalf("missing %s: install %s", tool, pkg)
	}
	t.Skipf("SKIPPED: missing %s: install %s", tool, pkg)
}

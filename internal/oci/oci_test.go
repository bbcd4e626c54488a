package oci

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	for _, c := range []struct {
		in, want, err string
	}{
		{"oci://reg.example:5000/disks/fedora:40", "reg.example:5000/disks/fedora:40", ""},
		{"oci://reg.example/a/b/c@sha256:" + strings.Repeat("0", 64), "reg.example/a/b/c@sha256:" + strings.Repeat("0", 64), ""},
		{"oci://127.0.0.1:5000/x:v1", "127.0.0.1:5000/x:v1", ""},
		{"oci://reg.example/disks/fedora", "", "no tag or digest"},
		{"oci://reg.example:5000/disks/fedora", "", "no tag or digest"},
		{"docker://reg.example/x:1", "", "is not an oci://"},
		{"oci://fedora:40", "", "names no registry host"},
		{"oci://reg.example/UPPER:1", "", "could not parse"},
		{"oci://reg.example/x@sha256:abc", "", "sha256"},
	} {
		ref, err := ParseRef(c.in, false)
		if c.err != "" {
			if err == nil || !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v, want a refusal naming %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || ref.Name() != c.want {
			t.Errorf("%s: %v %v, want %s", c.in, ref, err, c.want)
		}
	}
}

func TestDiskMediaType(t *testing.T) {
	for chain, want := range map[string]string{
		"qcow2":    "application/vnd.qemu.qcow2",
		"xz/qcow2": "application/vnd.qemu.qcow2+xz",
		"vmdk":     "application/vnd.vmware.vmdk",
		"gzip/raw": "application/vnd.metal-iaas.disk.raw+gzip",
		"vhdx":     "application/vnd.microsoft.vhdx",
	} {
		if got := DiskMediaType(strings.Split(chain, "/")); got != want {
			t.Errorf("%s: %s, want %s", chain, got, want)
		}
	}
}

// TestPlainHTTPRefused: go-containerregistry's own fallback to HTTP (for
// loopback and private addresses) does not happen unless asked for.
func TestPlainHTTPRefused(t *testing.T) {
	rt := &tlsOnly{base: http.DefaultTransport}
	req, _ := http.NewRequest("GET", "http://10.0.0.1:5000/v2/", nil)
	if _, err := rt.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "--plain-http") {
		t.Errorf("plain HTTP: %v", err)
	}
}

func TestNewStore(t *testing.T) {
	for _, bad := range []string{"oci://reg.example", "reg.example/metal", "oci://reg.example/Metal"} {
		if _, err := NewStore(bad, Options{}); err == nil {
			t.Errorf("store %q accepted", bad)
		}
	}
	s, err := NewStore("oci://reg.example:5000/metal/images/", Options{})
	if err != nil || s.String() != "reg.example:5000/metal/images" || s.tag("ubuntu").String() != "reg.example:5000/metal/images:ubuntu" {
		t.Errorf("store: %v %v", s, err)
	}
}

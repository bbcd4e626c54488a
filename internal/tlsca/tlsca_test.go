package tlsca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

var quiet = slog.New(slog.DiscardHandler)

func TestEnsureCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	ca, err := Ensure(dir, []string{"10.66.0.1:8443", "metal.example"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.IssuedCA || !ca.IssuedServer {
		t.Errorf("first Ensure: issued CA %v server %v, want both", ca.IssuedCA, ca.IssuedServer)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v (%v), want 0700", st.Mode().Perm(), err)
	}
	for _, f := range []string{CACertFile, CAKeyFile, ServerCertFile, ServerKeyFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", f, st.Mode().Perm(), err)
		}
	}
	if !ca.Cert.IsCA || ca.Cert.PublicKey.(*ecdsa.PublicKey).Curve != elliptic.P256() {
		t.Errorf("CA: IsCA %v, want an ECDSA P-256 CA", ca.Cert.IsCA)
	}
	leaf := ca.Server.Leaf
	if leaf.PublicKey.(*ecdsa.PublicKey).Curve != elliptic.P256() {
		t.Errorf("server key is not P-256")
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, name := range []string{"10.66.0.1", "metal.example", "localhost", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
			t.Errorf("server certificate for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "10.66.0.2", Roots: pool}); err == nil {
		t.Errorf("server certificate valid for a name it was not issued for")
	}
	cert, pemBytes, err := LoadCA(dir)
	if err != nil || !cert.Equal(ca.Cert) || !bytes.Equal(pemBytes, ca.CertPEM) {
		t.Errorf("LoadCA: %v", err)
	}
	if fp := ca.Fingerprint(); len(fp) != 32*3-1 {
		t.Errorf("fingerprint %q", fp)
	}
}

func TestEnsureReusesAndReissues(t *testing.T) {
	dir := t.TempDir()
	first, err := Ensure(dir, []string{"10.66.0.1"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		hosts     []string
		reissue   bool
		wantNames []string
	}{
		{"same names: reused", []string{"10.66.0.1"}, false, nil},
		{"a subset: reused", nil, false, nil},
		{"a new advertise host: reissued", []string{"10.66.0.1", "10.77.0.1:8443"}, true, []string{"10.77.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, err := Ensure(dir, tc.hosts, quiet)
			if err != nil {
				t.Fatal(err)
			}
			if ca.IssuedCA || !ca.Cert.Equal(first.Cert) {
				t.Fatalf("the CA changed")
			}
			if ca.IssuedServer != tc.reissue {
				t.Errorf("server certificate issued %v, want %v", ca.IssuedServer, tc.reissue)
			}
			for _, n := range tc.wantNames {
				if ca.Server.Leaf.VerifyHostname(n) != nil {
					t.Errorf("reissued certificate lacks %s", n)
				}
			}
		})
	}
}

func TestEnsureRefusesToReplaceABrokenCA(t *testing.T) {
	dir := t.TempDir()
	if _, err := Ensure(dir, nil, quiet); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, CAKeyFile), []byte("garbage"), 0o600)
	if _, err := Ensure(dir, nil, quiet); err == nil {
		t.Fatal("Ensure replaced a CA whose key is unreadable")
	}
}

func TestSANs(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
	}{
		{nil, []string{"localhost", "127.0.0.1"}},
		{[]string{"10.0.0.1:8080", "[::1]:8443", "0.0.0.0", "", "Metal.Example:443", "10.0.0.1"},
			[]string{"localhost", "127.0.0.1", "10.0.0.1", "::1", "metal.example"}},
	} {
		if got := SANs(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("SANs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

package ovf

import (
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// signWithOpenSSL builds a .cert the way ovftool and cot do: openssl signs
// the manifest, the hex signature line is followed by the PEM certificate.
func signWithOpenSSL(t *testing.T, dir, keyArgs, digest string, mf []byte) []byte {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		requireTool(t, "openssl", "openssl")
	}
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("openssl", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	must(t, os.WriteFile(filepath.Join(dir, "pkg.mf"), mf, 0o644))
	run(append([]string{"req", "-x509", "-nodes", "-days", "30", "-subj", "/CN=metal test signer/O=metal", "-keyout", "key.pem", "-out", "cert.pem"}, strings.Fields(keyArgs)...)...)
	run("dgst", "-"+strings.ToLower(digest), "-sign", "key.pem", "-out", "sig.bin", "pkg.mf")
	sig, err := os.ReadFile(filepath.Join(dir, "sig.bin"))
	must(t, err)
	pemBytes, err := os.ReadFile(filepath.Join(dir, "cert.pem"))
	must(t, err)
	return []byte(digest + "(pkg.mf)= " + hex.EncodeToString(sig) + "\n" + string(pemBytes))
}

func TestCertificateOpenSSL(t *testing.T) {
	mf := []byte("SHA256(vm.ovf)= " + strings.Repeat("ab", 32) + "\n")
	for _, tt := range []struct{ name, keyArgs, digest string }{
		{"rsa sha256", "-newkey rsa:2048", "SHA256"},
		{"rsa sha512", "-newkey rsa:2048", "SHA512"},
		{"ecdsa sha256", "-newkey ec -pkeyopt ec_paramgen_curve:P-256", "SHA256"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			certFile := signWithOpenSSL(t, dir, tt.keyArgs, tt.digest, mf)
			c, err := ParseCertificate(strings.NewReader(string(certFile)))
			if err != nil {
				t.Fatal(err)
			}
			if c.Algo != tt.digest || c.SignedFile != "pkg.mf" || !c.SelfSigned {
				t.Errorf("got %+v", c)
			}
			if !strings.Contains(c.Subject, "CN=metal test signer") || c.Subject != c.Issuer {
				t.Errorf("subject %q issuer %q", c.Subject, c.Issuer)
			}
			if d := time.Until(c.NotAfter); d < 29*24*time.Hour || d > 31*24*time.Hour {
				t.Errorf("NotAfter = %v", c.NotAfter)
			}
			if err := c.VerifySignature(mf); err != nil {
				t.Errorf("VerifySignature: %v", err)
			}
			tampered := append([]byte{}, mf...)
			tampered[10] ^= 1
			if err := c.VerifySignature(tampered); !errors.Is(err, ErrRefused) {
				t.Errorf("tampered manifest verified: %v", err)
			}
		})
	}
}

func TestParseCertificateRefuses(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		err      error
	}{
		{"empty", "", ErrMalformed},
		{"no signature line", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", ErrMalformed},
		{"no certificate", "SHA256(pkg.mf)= abcd\n", ErrMalformed},
		{"bad certificate", "SHA256(pkg.mf)= abcd\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", ErrMalformed},
		{"md5", "MD5(pkg.mf)= abcd\n", ErrUnsupported},
		{"not hex", "SHA256(pkg.mf)= xyz\n", ErrMalformed},
		{"two lines", "SHA256(pkg.mf)= abcd\nSHA256(pkg.mf)= abcd\n", ErrMalformed},
		{"garbage", "hello world\n", ErrMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseCertificate(strings.NewReader(tt.in)); !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
		})
	}
}

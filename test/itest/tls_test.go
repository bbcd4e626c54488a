package itest

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestTLSAutoAndAPIListener runs the real metald with --tls-auto, --https
// and --api-listen on loopback: metalctl talks HTTPS to the API listener
// with the CA `metald ca` prints; each listener serves only its routes;
// boot files stay on plain HTTP, boot.ipxe hands the agent an https URL
// and the initrd carries the CA; a restart reuses the CA.
func TestTLSAutoAndAPIListener(t *testing.T) {
	dataDir := t.TempDir()
	agentDir := t.TempDir()
	initrd := bytes.Repeat([]byte("I"), 1001)
	os.WriteFile(filepath.Join(agentDir, "initrd"), initrd, 0o644)
	os.WriteFile(filepath.Join(agentDir, "vmlinuz"), []byte("kernel"), 0o644)
	httpsAddr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	apiAddr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	m := StartMetald(t, dataDir, "--power-poll", "0", "--tls-auto", "--https", httpsAddr, "--api-listen", apiAddr,
		"--agent-dir", agentDir)

	// metald ca prints the CA; its fingerprint is the one metald logged.
	bin := filepath.Join(Binaries(t), "metald")
	caPEM, err := exec.Command(bin, "ca", "--data-dir", dataDir).Output()
	if err != nil || !bytes.HasPrefix(caPEM, []byte("-----BEGIN CERTIFICATE-----")) {
		t.Fatalf("metald ca: %v\n%s", err, caPEM)
	}
	fp, err := exec.Command(bin, "ca", "--data-dir", dataDir, "--fingerprint").Output()
	if err != nil || !strings.Contains(m.Log(), "ca_sha256="+strings.TrimSpace(string(fp))) {
		t.Fatalf("metald ca --fingerprint %q (%v) not in metald's log:\n%s", fp, err, m.Log())
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, caPEM, 0o644)

	// metalctl over HTTPS to the API listener, with and without the CA.
	m.Env = []string{"METALCTL_SERVER=https://" + apiAddr}
	wantFail(t, m.Ctl("machine", "list"), "metalctl without the CA", "certificate")
	m.Env = append(m.Env, "METALCTL_CA_CERT="+caFile)
	wantOK(t, m.Ctl("machine", "add", "tls-01", "--mac", "52:54:00:7e:00:01"), "machine add over HTTPS")
	if r := m.Ctl("machine", "list"); r.Code != 0 || !strings.Contains(r.Stdout, "tls-01") {
		t.Fatalf("machine list over HTTPS: %+v", r)
	}
	m.Env = []string{"METALCTL_SERVER=https://" + apiAddr}
	if r := m.Ctl("--ca-cert", caFile, "machine", "show", "tls-01"); r.Code != 0 {
		t.Fatalf("--ca-cert flag: %+v", r)
	}

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(url string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+m.Token)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	plain, https, api := m.URL, "https://"+httpsAddr, "https://"+apiAddr
	for _, tc := range []struct {
		base, path string
		code       int
	}{
		{plain, "/healthz", 200},
		{plain, "/boot.ipxe?mac=52:54:00:7e:00:01", 200},
		{plain, "/agent/vmlinuz", 200},
		{plain, "/agent/initrd", 200},
		{plain, "/api/v1/machines", 421},
		{plain, "/metrics", 421},
		{plain, "/", 421},
		{plain, "/agent/v1/task?mac=52:54:00:7e:00:01", 421}, // the agent API is HTTPS-only
		{plain, "/images/nothing", 421},
		{https, "/healthz", 200},
		{https, "/boot.ipxe?mac=52:54:00:7e:00:01", 200},
		{https, "/images/nothing", 404},
		{https, "/api/v1/machines", 421},
		{https, "/redfish/v1", 421},
		{api, "/api/v1/machines", 200},
		{api, "/metrics", 200},
		{api, "/", 200},
		{api, "/boot.ipxe?mac=52:54:00:7e:00:01", 421},
		{api, "/agent/initrd", 421},
		{api, "/agent/v1/task?mac=52:54:00:7e:00:01", 421},
	} {
		if code, b := get(tc.base + tc.path); code != tc.code {
			t.Errorf("GET %s%s: %d, want %d (%.200s)", tc.base, tc.path, code, tc.code, b)
		}
	}

	// boot.ipxe: iPXE fetches the agent over plain HTTP, the agent talks
	// HTTPS.
	_, script := get(plain + "/boot.ipxe?mac=52:54:00:7e:00:01")
	for _, want := range []string{"kernel " + plain + "/agent/vmlinuz", "initrd --name initrd " + plain + "/agent/initrd",
		"metal.url=" + https + " "} {
		if !bytes.Contains(script, []byte(want)) {
			t.Errorf("boot.ipxe lacks %q:\n%s", want, script)
		}
	}
	// The initrd is the built one, zero padding, and a gzip'ed archive
	// holding the CA.
	_, served := get(plain + "/agent/initrd")
	if !bytes.HasPrefix(served, initrd) || len(served) <= 1004 {
		t.Fatalf("served initrd (%d bytes) does not start with the built one", len(served))
	}
	gz, err := gzip.NewReader(bytes.NewReader(served[1004:]))
	if err != nil {
		t.Fatalf("appended archive: %v", err)
	}
	archive, _ := io.ReadAll(gz)
	if !bytes.Contains(archive, []byte("etc/metal/ca.pem")) || !bytes.Contains(archive, caPEM) {
		t.Errorf("appended archive lacks etc/metal/ca.pem with the CA")
	}

	// A restart reuses the CA and the server certificate.
	before := regexp.MustCompile(`ca_sha256=\S+`).FindString(m.Log())
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	m.Start()
	if after := regexp.MustCompile(`ca_sha256=\S+`).FindString(m.Log()); after != before || !strings.Contains(m.Log(), "server_cert_issued=false") {
		t.Errorf("after a restart: %s (before %s), log:\n%s", after, before, m.Log())
	}
	m.Env = []string{"METALCTL_SERVER=https://" + apiAddr, "METALCTL_CA_CERT=" + caFile}
	wantOK(t, m.Ctl("machine", "show", "tls-01"), "metalctl after the restart")
	for _, f := range []string{"ca.key", "ca.crt", "server.key", "server.crt"} {
		st, err := os.Stat(filepath.Join(dataDir, "tls", f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, st.Mode(), err)
		}
	}
}

// TestTLSFlagsRefused: contradictory TLS flags stop metald before it
// listens, with a usage error naming the flags.
func TestTLSFlagsRefused(t *testing.T) {
	bin := filepath.Join(Binaries(t), "metald")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-auto", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, "--tls-auto and --tls-cert"},
		{[]string{"--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
		{[]string{"--advertise-url", "https://10.0.0.1:8443"}, "needs --tls-auto"},
		{[]string{"--tls-auto", "--https", "127.0.0.1:1", "--api-listen", "127.0.0.1:1"}, "are both"},
	} {
		args := append([]string{"serve", "--data-dir", t.TempDir(), "--http", "127.0.0.1:0"}, tc.args...)
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("metald %v: %v\n%s\nwant an error with %q", tc.args, err, out, tc.want)
		}
	}
}

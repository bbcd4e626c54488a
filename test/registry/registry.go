// Package registry runs real Distribution registries (Debian's
// docker-registry) on loopback for tests, with or without htpasswd basic
// auth, and fills them the ways users do: skopeo copies of OCI layouts
// (containerDisks, indexes) and the registry's own HTTP API (artifacts).
// It also builds the layouts and small disks, and can corrupt a stored
// blob. Test support only.
package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metal-iaas/metal/test/testenv"
)

// Registry is one running docker-registry.
type Registry struct {
	// Addr is 127.0.0.1:PORT.
	Addr string
	// Root is the storage directory.
	Root string
	// User and Password are set when the registry wants basic auth.
	User, Password string
	wrap           []string
	tokens         *atomic.Int64
}

// TokensIssued counts the bearer tokens the token service gave out.
func (r *Registry) TokensIssued() int64 {
	if r.tokens == nil {
		return 0
	}
	return r.tokens.Load()
}

// Options of Start.
type Options struct {
	// User and Password turn on htpasswd basic auth, or with Token the
	// distribution spec's bearer token auth: a token service (this
	// package's) that answers JWTs to those credentials.
	User, Password string
	Token          bool
	// Addr is where it listens (a free 127.0.0.1 port when empty).
	Addr string
	// Wrap prefixes every command the harness runs (the registry, skopeo,
	// the readiness probe): ip netns exec NS puts them in a test's network
	// namespace. PushBlob and PutManifest speak HTTP from the test's own
	// namespace and so need an empty Wrap.
	Wrap []string
}

// Start runs a registry until the test ends (plain HTTP on loopback).
func Start(t testing.TB, o Options) *Registry {
	t.Helper()
	bin := testenv.Tool(t, "docker-registry", "docker-registry")
	dir := t.TempDir()
	r := &Registry{Root: filepath.Join(dir, "storage"), User: o.User, Password: o.Password, Addr: o.Addr, wrap: o.Wrap}
	if r.Addr == "" {
		r.Addr = freeAddr(t)
	}
	auth := ""
	listen := r.Addr
	if o.Token {
		listen = freeAddr(t) // behind the token server's front on r.Addr
		var ts *tokenServer
		ts, auth = startTokenServer(t, dir, r.Addr, listen, o.User, o.Password)
		r.tokens = &ts.issued
	} else if o.User != "" {
		htpasswd := testenv.Tool(t, "htpasswd", "apache2-utils")
		out, err := exec.Command(htpasswd, "-Bbn", o.User, o.Password).Output()
		if err != nil {
			t.Fatalf("htpasswd: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "htpasswd"), out, 0o600); err != nil {
			t.Fatal(err)
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: metal-test\n    path: %s\n", filepath.Join(dir, "htpasswd"))
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, r.Root, listen, auth)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := r.command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("docker-registry: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("docker-registry %s log:\n%s", r.Addr, tail(b, 4000))
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, err := r.probe()
		if err == nil && (code == http.StatusOK || code == http.StatusUnauthorized) {
			return r
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("docker-registry on %s did not come up: %v\n%s", r.Addr, err, tail(b, 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// command is name with args, wrapped.
func (r *Registry) command(name string, args ...string) *exec.Cmd {
	if len(r.wrap) == 0 {
		return exec.Command(name, args...)
	}
	return exec.Command(r.wrap[0], append(append(r.wrap[1:len(r.wrap):len(r.wrap)], name), args...)...)
}

// probe answers the status of GET /v2/.
func (r *Registry) probe() (int, error) {
	if len(r.wrap) == 0 {
		resp, err := http.Get("http://" + r.Addr + "/v2/")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	out, err := r.command("curl", "-s", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}", "http://"+r.Addr+"/v2/").Output()
	if err != nil {
		return 0, fmt.Errorf("curl: %w", err)
	}
	var code int
	_, err = fmt.Sscan(string(out), &code)
	return code, err
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Ref is oci://ADDR/REPO (repo with its :tag or @digest).
func (r *Registry) Ref(repo string) string { return "oci://" + r.Addr + "/" + repo }

// Creds is USER:PASS, or "" without auth.
func (r *Registry) Creds() string {
	if r.User == "" {
		return ""
	}
	return r.User + ":" + r.Password
}

// Skopeo copies src (e.g. oci:DIR:TAG) to REPO:TAG of the registry, with
// extra flags (--format v2s2, --all).
func (r *Registry) Skopeo(t testing.TB, src, repoTag string, flags ...string) {
	t.Helper()
	bin := testenv.Tool(t, "skopeo", "skopeo")
	args := append([]string{"copy", "--insecure-policy", "--dest-tls-verify=false"}, flags...)
	if c := r.Creds(); c != "" {
		args = append(args, "--dest-creds", c)
	}
	args = append(args, src, "docker://"+r.Addr+"/"+repoTag)
	out, err := r.command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// PushBlob uploads b to repo through the HTTP API (monolithic POST+PUT)
// and returns its digest.
func (r *Registry) PushBlob(t testing.TB, repo string, b []byte) string {
	t.Helper()
	d := Digest(b)
	resp := r.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", "", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload to %s: %s", repo, resp.Status)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	q.Set("digest", d)
	loc.RawQuery = q.Encode()
	resp = r.do(t, http.MethodPut, loc.RequestURI(), "application/octet-stream", b)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload %s to %s: %s", d, repo, resp.Status)
	}
	return d
}

// PutManifest stores a manifest as repo:ref and returns its digest.
func (r *Registry) PutManifest(t testing.TB, repo, ref, mediaType string, b []byte) string {
	t.Helper()
	resp := r.do(t, http.MethodPut, "/v2/"+repo+"/manifests/"+ref, mediaType, b)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("put manifest %s:%s: %s %s", repo, ref, resp.Status, body)
	}
	return Digest(b)
}

func (r *Registry) do(t testing.TB, method, path, ctype string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+r.Addr+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if r.User != "" {
		req.SetBasicAuth(r.User, r.Password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// CorruptBlob changes one byte of a stored blob in place, so that the
// registry serves content that does not match its digest.
func (r *Registry) CorruptBlob(t testing.TB, digest string) {
	t.Helper()
	hex := strings.TrimPrefix(digest, "sha256:")
	p := filepath.Join(r.Root, "docker", "registry", "v2", "blobs", "sha256", hex[:2], hex, "data")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("corrupt blob: %v", err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Digest is sha256:<hex> of b.
func Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

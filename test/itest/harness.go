// Package itest is the integration-test harness: it builds the real
// binaries once, starts metald on loopback with a temporary data dir, and
// runs metalctl against it. Tests in this package and others use it.
package itest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/metal-iaas/metal/test/testenv"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// ModuleRoot returns the directory holding go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the metal module")
	}
	return filepath.Dir(gomod), nil
}

// Binaries builds metald and metalctl once per test process and returns
// the directory holding them.
func Binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			buildErr = err
			return
		}
		binDir, err = os.MkdirTemp("", "metal-itest-bin-")
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+"/", "./cmd/metald", "./cmd/metalctl")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Metald is a running metald process.
type Metald struct {
	t       testing.TB
	DataDir string
	Addr    string
	URL     string
	Token   string
	Args    []string
	cmd     *exec.Cmd
	log     *bytes.Buffer
	done    chan error

	// Env is appended to metalctl's environment (e.g. METALCTL_SERVER of
	// an API listener of its own, METALCTL_CA_CERT).
	Env []string
}

// NewToken creates an API token offline in dataDir with `metald token create`.
func NewToken(t testing.TB, dataDir string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(Binaries(t), "metald"), "token", "create", "--data-dir", dataDir, "--name", "itest").Output()
	if err != nil {
		t.Fatalf("metald token create: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// StartMetald starts `metald serve` on a free loopback port with dataDir
// (a new temp dir when empty) and waits until /healthz answers.
func StartMetald(t testing.TB, dataDir string, extra ...string) *Metald {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	m := &Metald{t: t, DataDir: dataDir, Token: NewToken(t, dataDir)}
	m.Addr = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	m.URL = "http://" + m.Addr
	m.Args = append([]string{"serve", "--data-dir", dataDir, "--http", m.Addr, "--log-level", "debug"}, extra...)
	m.Start()
	t.Cleanup(func() { m.Stop() })
	return m
}

// Start (re)starts the process with the same arguments.
func (m *Metald) Start() {
	m.t.Helper()
	m.log = &bytes.Buffer{}
	m.cmd = exec.Command(filepath.Join(Binaries(m.t), "metald"), m.Args...)
	m.cmd.Stdout = m.log
	m.cmd.Stderr = m.log
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start metald: %v", err)
	}
	m.done = make(chan error, 1)
	go func(c *exec.Cmd, d chan error) { d <- c.Wait() }(m.cmd, m.done)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(m.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-m.done:
			m.done <- err
			m.t.Fatalf("metald exited during start-up: %v\n%s", err, m.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	m.t.Fatalf("metald did not answer /healthz within 20s\n%s", m.log)
}

// Stop sends SIGTERM and waits for a graceful exit; it returns the exit
// error (nil on a clean exit).
func (m *Metald) Stop() error {
	if m.cmd == nil || m.cmd.Process == nil {
		return nil
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-m.done:
		m.cmd = nil
		return err
	case <-time.After(15 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
		m.cmd = nil
		return errors.New("metald did not stop within 15s of SIGTERM")
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (m *Metald) Kill() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.done
	m.cmd = nil
}

// Log returns what metald printed so far.
func (m *Metald) Log() string { return m.log.String() }

// LogHas reports whether metald's log holds s within d: its output
// reaches the buffer through a pipe, a little after the request that
// made it was answered.
func (m *Metald) LogHas(s string, d time.Duration) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		if strings.Contains(m.Log(), s) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// Result is one metalctl run.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Ctl runs metalctl against m with args.
func (m *Metald) Ctl(args ...string) Result {
	m.t.Helper()
	return m.CtlStdin(nil, args...)
}

// CtlStdin runs metalctl with stdin.
func (m *Metald) CtlStdin(stdin io.Reader, args ...string) Result {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(Binaries(m.t), "metalctl"), args...)
	cmd.Env = append(append(os.Environ(), "METALCTL_SERVER="+m.URL, "METALCTL_TOKEN="+m.Token), m.Env...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			m.t.Fatalf("metalctl %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// Require fails a test unless the condition holds, or skips it when
// METAL_REQUIRE_ALL is unset — loudly, never silently.
func Require(t testing.TB, ok bool, why string) {
	t.Helper()
	testenv.Require(t, ok, why)
}

// sharedKeyDir is a data directory for a second metald on a's database:
// it holds a's secret.key, which seals the BMC credentials they share.
func sharedKeyDir(t *testing.T, a *Metald) string {
	t.Helper()
	dir := t.TempDir()
	key, err := os.ReadFile(filepath.Join(a.DataDir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

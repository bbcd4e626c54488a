package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// MetaldConfig configures the metald a lab runs.
type MetaldConfig struct {
	// Bin is the metald binary; required.
	Bin string
	// DataDir is --data-dir (default Dir/metald-data).
	DataDir string
	// AgentDir is --agent-dir (vmlinuz + initrd); required.
	AgentDir string
	// Port on the bridge address (default 8080).
	Port int
	// AdvertiseURL is --advertise-url (default the URL metald listens on).
	AdvertiseURL string
	// ImageURL is --image-url (set it to put a proxy between agents and
	// metald's /images/).
	ImageURL string
	// TLSPort, when set, runs metald with --tls-auto and --https on this
	// port of the bridge address; metalctl and Get then use HTTPS with the
	// CA metald created.
	TLSPort int
	// Extra flags appended to metald serve.
	Extra []string
}

// Metald is the real metald running in the lab's namespace with full
// DHCP on the bridge.
type Metald struct {
	lab   *Lab
	cfg   MetaldConfig
	URL   string // http://BridgeIP:Port
	Token string // API token (metald token create)
	p     *proc
	n     int

	// APIURL is where the API is: URL, or https://BridgeIP:TLSPort.
	APIURL string
}

// StartMetald creates an API token and starts metald serve; it returns
// when /healthz answers (30 s at most).
func (l *Lab) StartMetald(ctx context.Context, cfg MetaldConfig) (*Metald, error) {
	if cfg.Bin == "" || cfg.AgentDir == "" {
		return nil, fmt.Errorf("lab: metald Bin and AgentDir are required")
	}
	if cfg.DataDir == "" {
		cfg.DataDir = filepath.Join(l.Dir, "metald-data")
	}
	if cfg.Port == 0 {
		cfg.Port = 8080
	}
	m := &Metald{lab: l, cfg: cfg, URL: fmt.Sprintf("http://%s:%d", BridgeIP, cfg.Port)}
	if l.cfg.IPv6Only {
		m.URL = fmt.Sprintf("http://[%s]:%d", BridgeIP6, cfg.Port)
	}
	m.APIURL = m.URL
	if cfg.TLSPort != 0 {
		m.APIURL = fmt.Sprintf("https://%s:%d", BridgeIP, cfg.TLSPort)
	}
	out, err := Output(ctx, cfg.Bin, "token", "create", "--data-dir", cfg.DataDir, "--name", "lab")
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	m.Token = strings.TrimSpace(lines[len(lines)-1])
	return m, m.Start(ctx)
}

// Start (re)starts metald; Kill stops it.
func (m *Metald) Start(ctx context.Context) error {
	addr := fmt.Sprintf("%s:%d", BridgeIP, m.cfg.Port)
	dhcp := []string{"--dhcp-mode", "full", "--dhcp-range", DHCPRange}
	if m.lab.cfg.IPv6Only {
		addr = fmt.Sprintf("[%s]:%d", BridgeIP6, m.cfg.Port)
		dhcp = []string{"--dhcp-mode", "off", "--dhcp6-mode", "full", "--dhcp6-range", DHCP6Range}
	}
	args := append(append([]string{"serve", "--data-dir", m.cfg.DataDir, "--http", addr,
		"--interface", bridge, "--advertise-url", m.advertise(),
		"--agent-dir", m.cfg.AgentDir, "--log-level", "debug"}, dhcp...), m.cfg.Extra...)
	if m.cfg.ImageURL != "" {
		args = append(args, "--image-url", m.cfg.ImageURL)
	}
	if m.cfg.TLSPort != 0 {
		args = append(args, "--tls-auto", "--https", fmt.Sprintf("%s:%d", BridgeIP, m.cfg.TLSPort))
	}
	m.n++
	done, err := m.lab.Start("metald", m.cfg.Bin, args...)
	if err != nil {
		return err
	}
	m.lab.mu.Lock()
	m.p = m.lab.procs[len(m.lab.procs)-1]
	m.lab.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("metald exited at start; see %s", m.LogPath())
		default:
		}
		cmd := m.lab.Exec(ctx, "curl", "-gfsS", "-m", "2", "-o", "/dev/null", m.URL+"/healthz")
		if cmd.Run() == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("metald does not answer %s/healthz; see %s", m.URL, m.LogPath())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Kill stops metald with sig (SIGKILL: no graceful shutdown).
func (m *Metald) Kill(sig syscall.Signal) {
	if m.p != nil {
		m.p.kill(sig, 5*time.Second)
	}
}

// LogPath is metald's log file.
func (m *Metald) LogPath() string { return filepath.Join(m.lab.Dir, "metald.log") }

// Metalctl returns a metalctl command run inside the namespace against
// this metald (METALCTL_SERVER, METALCTL_TOKEN set).
func (m *Metald) Metalctl(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := m.lab.Exec(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "METALCTL_SERVER="+m.APIURL, "METALCTL_TOKEN="+m.Token)
	if m.cfg.TLSPort != 0 {
		cmd.Env = append(cmd.Env, "METALCTL_CA_CERT="+m.CACert())
	}
	return cmd
}

// CACert is the CA certificate file metald --tls-auto created.
func (m *Metald) CACert() string { return filepath.Join(m.cfg.DataDir, "tls", "ca.crt") }

// Get fetches path from metald inside the namespace (10 s at most).
func (m *Metald) Get(ctx context.Context, path string) (string, error) {
	args := []string{"netns", "exec", m.lab.NS, "curl", "-gfsS", "-m", "10", "-H", "Authorization: Bearer " + m.Token}
	if m.cfg.TLSPort != 0 {
		args = append(args, "--cacert", m.CACert())
	}
	return Output(ctx, "ip", append(args, m.APIURL+path)...)
}

func (m *Metald) advertise() string {
	if m.cfg.AdvertiseURL != "" {
		return m.cfg.AdvertiseURL
	}
	return m.URL
}

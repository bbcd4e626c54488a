package bmcsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// IPMIConfig configures an ipmi_sim BMC.
type IPMIConfig struct {
	// Dir is the working directory for lan.conf, the emulator command
	// file, ipmi_sim's state, the chassis control script and the VM's
	// pid file (required; a test's t.TempDir()).
	Dir string
	// Port is the UDP port on 127.0.0.1 (0 picks a free one).
	Port int
	// User and Password of the BMC's admin user.
	User, Password string
	// VM is the machine powered by the BMC: the command line chassis
	// control runs on power-on, to which "-boot n|c|d -daemonize -pidfile
	// FILE" is appended (nil: no VM, power is a state file). See DefaultVM.
	VM []string
	// Prefix, when set, is put before the ipmi_sim and ipmitool command
	// lines, e.g. {"ip", "netns", "exec", NS} to run the BMC (and so the
	// VM its chassis control starts) inside a network namespace; ipmitool
	// then reaches it on that namespace's loopback. It must exec the
	// command (keep its pid), as ip netns exec does.
	Prefix []string
}

// DefaultVM is a small diskless QEMU machine (TCG, no network).
func DefaultVM() []string {
	return []string{"qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", "128",
		"-display", "none", "-nic", "none", "-serial", "none", "-monitor", "none", "-parallel", "none",
		"-name", "metal-bmcsim-vm"}
}

// IPMISim is a running OpenIPMI ipmi_sim BMC on 127.0.0.1 whose chassis
// control (a shell script written into Dir) starts and stops the VM.
type IPMISim struct {
	cfg  IPMIConfig
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// StartIPMISim writes the configuration, starts ipmi_sim and waits until
// it answers ipmitool (-C 3). It needs the ipmi_sim and ipmitool binaries
// (Debian openipmi, ipmitool).
func StartIPMISim(ctx context.Context, cfg IPMIConfig) (*IPMISim, error) {
	if cfg.Dir == "" || cfg.User == "" || cfg.Password == "" {
		return nil, errors.New("ipmisim: Dir, User and Password are required")
	}
	for _, tool := range []string{"ipmi_sim", "ipmitool"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("ipmisim: %s not found (install Debian packages openipmi and ipmitool): %w", tool, err)
		}
	}
	if strings.ContainsAny(cfg.User+cfg.Password, "\"\\ \n") {
		return nil, errors.New("ipmisim: user and password must not contain quotes, backslashes or spaces")
	}
	port := cfg.Port
	if port == 0 {
		var err error
		if port, err = freeUDPPort(); err != nil {
			return nil, err
		}
	}
	s := &IPMISim{cfg: cfg, port: port, done: make(chan struct{})}
	if err := s.writeFiles(); err != nil {
		return nil, err
	}
	stateDir := filepath.Join(cfg.Dir, "state")
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(cfg.Dir, "ipmi_sim.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	s.cmd = s.command(context.Background(), "ipmi_sim", "-c", s.path("lan.conf"), "-f", s.path("sim.emu"), "-s", stateDir, "-n")
	s.cmd.Dir = cfg.Dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("ipmisim: start ipmi_sim: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()

	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := s.Ipmitool(ctx, "chassis", "power", "status")
		if err == nil && strings.Contains(out, "Chassis Power is") {
			return s, nil
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(s.path("ipmi_sim.log"))
			return nil, fmt.Errorf("ipmisim: ipmi_sim exited: %s", bytes.TrimSpace(log))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = s.Close()
			return nil, fmt.Errorf("ipmisim: ipmi_sim does not answer on 127.0.0.1:%d: %v %s", port, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// command is name args, behind cfg.Prefix when set.
func (s *IPMISim) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if len(s.cfg.Prefix) > 0 {
		args = append(append(append([]string{}, s.cfg.Prefix[1:]...), name), args...)
		name = s.cfg.Prefix[0]
	}
	return exec.CommandContext(ctx, name, args...)
}

func (s *IPMISim) path(name string) string { return filepath.Join(s.cfg.Dir, name) }

// Port is the UDP port ipmi_sim listens on (127.0.0.1).
func (s *IPMISim) Port() int { return s.port }

// URL is the pkg/bmc URL of this BMC.
func (s *IPMISim) URL() string {
	return fmt.Sprintf("ipmi://%s:%s@127.0.0.1:%d?cipher=3", s.cfg.User, s.cfg.Password, s.port)
}

// Ipmitool runs ipmitool against this BMC (lanplus, cipher suite 3).
func (s *IPMISim) Ipmitool(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	a := append([]string{"-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", strconv.Itoa(s.port), "-U", s.cfg.User, "-E", "-N", "1", "-R", "2"}, args...)
	cmd := s.command(ctx, "ipmitool", a...)
	cmd.Env = []string{"IPMITOOL_PASSWORD=" + s.cfg.Password}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// BootDevice is the last boot device chassis control was given ("pxe",
// "default", "cdrom", "bios", ...; "" before any).
func (s *IPMISim) BootDevice() string {
	b, _ := os.ReadFile(s.path("boot"))
	return strings.TrimSpace(string(b))
}

// VMBootArg is the -boot value the running (or last) VM was started with.
func (s *IPMISim) VMBootArg() string {
	b, _ := os.ReadFile(s.path("vm.bootarg"))
	return strings.TrimSpace(string(b))
}

// VMPID is the pid of the running VM, 0 when none runs.
func (s *IPMISim) VMPID() int {
	b, err := os.ReadFile(s.path("vm.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	if syscall.Kill(pid, 0) != nil {
		return 0
	}
	return pid
}

// PoweredOn reports chassis control's view of power.
func (s *IPMISim) PoweredOn() bool {
	if s.cfg.VM != nil {
		return s.VMPID() != 0
	}
	b, _ := os.ReadFile(s.path("power"))
	return strings.TrimSpace(string(b)) == "1"
}

// ChassisLog is every chassis control invocation so far, one per line
// ("get power", "set boot pxe", ...).
func (s *IPMISim) ChassisLog() []string {
	b, _ := os.ReadFile(s.path("chassis.log"))
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// Close stops ipmi_sim and the VM.
func (s *IPMISim) Close() error {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(3 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
	}
	if pid := s.VMPID(); pid != 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		for i := 0; i < 50 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

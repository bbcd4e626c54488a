package netboot

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metal-iaas/metal/pkg/bootfs"
	"github.com/metal-iaas/metal/pkg/dhcp"
	"github.com/metal-iaas/metal/pkg/pxe"
)

// fakeAgentFiles serves fixed agent boot files.
type fakeAgentFiles map[string]string

func (f fakeAgentFiles) Open(name string) (bootfs.File, int64, error) {
	b, ok := f[name]
	if !ok {
		return nil, 0, fs.ErrNotExist
	}
	return bytesFile([]byte(b))
}

// shimService is a full-mode service whose machines 01 (provisioning,
// reserved 10.0.0.11) and 02 (ready) say nothing of their UEFI boot,
// 04 asks for shim and 05 for iPXE; the service's own choice is chain.
func shimService(t *testing.T, chain pxe.UEFIBoot) (*Service, *MemoryInventory) {
	return shimServiceMode(t, ModeFull, chain)
}

func shimServiceMode(t *testing.T, mode Mode, chain pxe.UEFIBoot) (*Service, *MemoryInventory) {
	t.Helper()
	inv := NewMemoryInventory()
	inv.Add(Machine{MAC: net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}, Name: "node-1", State: "provisioning", IP: netip.MustParseAddr("10.0.0.11"), Token: "tok1"}, "")
	inv.Add(Machine{MAC: net.HardwareAddr{0x52, 0x54, 0, 0, 0, 2}, Name: "node-2", State: "ready", IP: netip.MustParseAddr("10.0.0.12")}, "")
	inv.Add(Machine{MAC: net.HardwareAddr{0x52, 0x54, 0, 0, 0, 4}, Name: "node-4", State: "inspecting", UEFIBoot: pxe.UEFIBootShim}, "")
	inv.Add(Machine{MAC: net.HardwareAddr{0x52, 0x54, 0, 0, 0, 5}, Name: "node-5", State: "inspecting", UEFIBoot: pxe.UEFIBootIPXE}, "")
	shim := t.TempDir()
	os.WriteFile(filepath.Join(shim, "shimx64.efi"), []byte("SHIM"), 0o644)
	os.WriteFile(filepath.Join(shim, "grubx64.efi"), []byte("GRUB"), 0o644)
	os.WriteFile(filepath.Join(t.TempDir(), "secret"), []byte("SECRET"), 0o644)
	cfg := Config{Mode: mode, Interface: "lo", ServerIP: netip.MustParseAddr("10.0.0.1"), AdvertiseURL: "http://10.0.0.1:8080/", TFTPAddr: "off",
		Subnet: netip.MustParsePrefix("10.0.0.0/24"), RangeStart: netip.MustParseAddr("10.0.0.100"), RangeEnd: netip.MustParseAddr("10.0.0.110"),
		LeaseTime: time.Hour, UEFIBoot: chain, ShimDir: shim,
		AgentFiles: fakeAgentFiles{"vmlinuz": "KERNEL", "initrd": "INITRD"}}
	if chain == pxe.UEFIBootShim {
		cfg.TFTPAddr = "127.0.0.1:0" // shim needs TFTP; New does not listen
	}
	s, err := New(cfg, inv, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, inv
}

// TestUEFIBootDecision: which boot file UEFI x86-64 PXE firmware gets,
// from metald's --uefi-boot and the machine's own choice, in full and
// proxy mode.
func TestUEFIBootDecision(t *testing.T) {
	for _, mode := range []Mode{ModeFull, ModeProxy} {
		uefiBootDecision(t, mode)
	}
}

func uefiBootDecision(t *testing.T, mode Mode) {
	efi := []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)), dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003000"))}
	bios := []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)), dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001"))}
	for _, tc := range []struct {
		chain pxe.UEFIBoot
		last  byte
		mods  []dhcpv4.Modifier
		file  string
	}{
		{pxe.UEFIBootIPXE, 1, efi, pxe.FileUEFISNP},
		{pxe.UEFIBootIPXE, 4, efi, pxe.FileShim}, // the machine asks for shim
		{pxe.UEFIBootIPXE, 5, efi, pxe.FileUEFISNP},
		{pxe.UEFIBootShim, 1, efi, pxe.FileShim},
		{pxe.UEFIBootShim, 4, efi, pxe.FileShim},
		{pxe.UEFIBootShim, 5, efi, pxe.FileUEFISNP}, // the machine keeps iPXE
		{pxe.UEFIBootShim, 2, bios, pxe.FileBIOS},
		{pxe.UEFIBootShim, 9, efi, ""}, // unknown, ignored
	} {
		s, _ := shimServiceMode(t, mode, tc.chain)
		p, _ := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithTransactionID(dhcpv4.TransactionID{0, 0, 0, tc.last}),
			dhcpv4.WithHwAddr(net.HardwareAddr{0x52, 0x54, 0, 0, 0, tc.last}), dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover)}, tc.mods...)...)
		resp, err := s.ServeDHCP(context.Background(), &dhcp.Request{Packet: p, LocalPort: 67})
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if resp != nil {
			got = resp.BootFileName
			if got == pxe.FileShim && !resp.ServerIPAddr.Equal(net.IPv4(10, 0, 0, 1)) {
				t.Errorf("shim offer without next-server: %v", resp.ServerIPAddr)
			}
		}
		if got != tc.file {
			t.Errorf("%s mode, --uefi-boot %s, machine %02x: boot file %q, want %q", mode, tc.chain, tc.last, got, tc.file)
		}
	}
}

func readTFTP(t *testing.T, s *Service, name string, src string) (string, error) {
	t.Helper()
	clean, err := bootfs.CleanPath(name)
	if err != nil {
		return "", err
	}
	f, size, err := s.openTFTP(clean, netip.MustParseAddr(src))
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	if int64(len(b)) != size {
		t.Errorf("%s: size %d, read %d", name, size, len(b))
	}
	return string(b), nil
}

// TestGrubOverTFTP: the chain's files by the names shim and GRUB ask for
// (GRUB's with a leading slash); a machine's configuration says what the
// lifecycle boots, goes only to the machine's own address in full mode,
// and is recorded; other names fall through to the TFTP root.
func TestGrubOverTFTP(t *testing.T) {
	s, inv := shimService(t, pxe.UEFIBootShim)
	for name, want := range map[string]string{
		"shim/shimx64.efi": "SHIM", "shim/grubx64.efi": "GRUB", "/grub/grub.cfg": pxe.GrubConfigText,
		"/agent/vmlinuz": "KERNEL", "/agent/initrd": "INITRD",
	} {
		if got, err := readTFTP(t, s, name, "10.0.0.11"); err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	cfg, err := readTFTP(t, s, "/grub/grub.cfg-52:54:00:00:00:01", "10.0.0.11")
	if err != nil || !strings.Contains(cfg, "linux /agent/vmlinuz metal.mac=52:54:00:00:00:01 'metal.url=http://10.0.0.1:8080' metal.token=tok1 ") ||
		!strings.Contains(cfg, "initrd /agent/initrd\nboot\n") {
		t.Errorf("provisioning machine's configuration: %v\n%s", err, cfg)
	}
	if cfg, err := readTFTP(t, s, "/grub/grub.cfg-52:54:00:00:00:02", "10.0.0.12"); err != nil || !strings.Contains(cfg, "\nexit\n") || strings.Contains(cfg, "linux") {
		t.Errorf("ready machine's configuration: %v\n%s", err, cfg)
	}
	// Another address asking for node-1's configuration (its token) is refused.
	if _, err := readTFTP(t, s, "/grub/grub.cfg-52:54:00:00:00:01", "10.0.0.50"); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("foreign request: %v, want a refusal", err)
	}
	if _, err := readTFTP(t, s, "/grub/grub.cfg-52:54:00:00:00:99", "10.0.0.50"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("unknown machine: %v, want not found", err)
	}
	for _, name := range []string{"/grub/grub.cfg-nonsense", "/shim/../secret", "/shim/mmx64.efi", "undionly.kpxe"} {
		clean, err := bootfs.CleanPath(name)
		if err != nil {
			continue
		}
		if _, _, err := s.openTFTP(clean, netip.MustParseAddr("10.0.0.11")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v, want not found (left to the TFTP root)", name, err)
		}
	}
	var scripts, refused int
	for _, e := range inv.Events() {
		switch {
		case e.Kind == EventBootScript && e.Fields["script"] == pxe.GrubAgent && e.Machine == "node-1":
			scripts++
		case e.Kind == EventScriptRefused:
			refused++
		}
	}
	if scripts != 1 || refused != 1 {
		t.Errorf("events: %d agent.grub for node-1, %d refusals; want 1 and 1", scripts, refused)
	}
}

func TestConfigValidateShim(t *testing.T) {
	c := Config{Mode: ModeOff, AdvertiseURL: "http://10.0.0.1:8080", UEFIBoot: pxe.UEFIBootShim, ShimDir: "/x", TFTPAddr: ":69"}
	if err := c.Validate(); err != nil {
		t.Errorf("shim with TFTP and a directory: %v", err)
	}
	for name, mut := range map[string]func(*Config){
		"tftp off":     func(c *Config) { c.TFTPAddr = "off" },
		"no directory": func(c *Config) { c.ShimDir = "" },
		"bad chain":    func(c *Config) { c.UEFIBoot = "grub" },
	} {
		c := c
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestMissingShimDirNotFatal: metald starts without the Secure Boot
// chain's directory (as without the agent's files): the shim files are
// then simply not there.
func TestMissingShimDirNotFatal(t *testing.T) {
	cfg := Config{Mode: ModeOff, AdvertiseURL: "http://10.0.0.1:8080/", TFTPAddr: "127.0.0.1:0",
		ShimDir: filepath.Join(t.TempDir(), "absent"), AgentFiles: fakeAgentFiles{}}
	s, err := New(cfg, NewMemoryInventory(), prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatalf("New with a missing shim directory: %v", err)
	}
	if _, _, err := s.openTFTP(pxe.FileShim, netip.MustParseAddr("10.0.0.11")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("shim without its directory: %v, want not found", err)
	}
}

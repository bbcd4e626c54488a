package initramfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/gzip"

	"github.com/metal-iaas/metal/internal/agent/modules"
)

// DefaultModules are the drivers (name patterns, fnmatch style) put into
// the initramfs for common server and VM hardware; their dependencies come
// along from modules.dep. Modules without a device (af_packet is built in)
// are not needed: the agent loads what modalias asks for.
var DefaultModules = []string{
	// virtio (QEMU/KVM, most clouds)
	"virtio_pci", "virtio_blk", "virtio_net", "virtio_scsi", "virtio_mmio",
	// storage
	"ahci", "ata_piix", "ata_generic", "nvme", "sd_mod", "sr_mod",
	"megaraid_sas", "mpt3sas", "smartpqi", "hpsa", "aacraid", "vmw_pvscsi",
	"mptspi", "usb_storage", "uas",
	// NICs
	"e1000", "e1000e", "igb", "igc", "ixgbe", "ixgbevf", "i40e", "iavf",
	"ice", "bnxt_en", "tg3", "bnx2x", "mlx4_en", "mlx5_core", "r8169",
	"vmxnet3", "qede", "be2net", "ena", "sfc",
	// USB host controllers (keyboards, USB NICs and disks)
	"xhci_pci", "ehci_pci", "ohci_pci", "uhci_hcd",
	// BMC
	"ipmi_si", "ipmi_devintf", "ipmi_ssif",
}

// Options say what goes into the initramfs.
type Options struct {
	// Agent is the path of the static agent binary, installed as /init.
	Agent string
	// ModulesDir is /lib/modules/<release> of the kernel (with
	// modules.dep, modules.alias from depmod).
	ModulesDir string
	// Modules lists module name patterns; nil means DefaultModules.
	Modules []string
	// CACerts, when set, is a PEM bundle installed as
	// /etc/ssl/certs/ca-certificates.crt for HTTPS metald URLs.
	CACerts string
}

// Manifest says what Build put in.
type Manifest struct {
	Release string
	Modules []string // canonical names, dependency closure, sorted
	Bytes   int64    // uncompressed payload of module files
}

// Build writes the gzip'ed cpio archive to w.
func Build(w io.Writer, o Options) (Manifest, error) {
	var m Manifest
	if o.Agent == "" || o.ModulesDir == "" {
		return m, errors.New("initramfs: Agent and ModulesDir are required")
	}
	m.Release = filepath.Base(o.ModulesDir)
	sel, deps, err := SelectModules(o.ModulesDir, o.Modules)
	if err != nil {
		return m, err
	}
	m.Modules = sel
	gz, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return m, err
	}
	c := NewCPIOWriter(gz)
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp", "etc", "root", "mnt"} {
		if err := c.Dir(d, 0o755); err != nil {
			return m, err
		}
	}
	if err := c.CharDev("dev/console", 0o600, 5, 1); err != nil {
		return m, err
	}
	if err := c.CharDev("dev/null", 0o666, 1, 3); err != nil {
		return m, err
	}
	if err := addFile(c, "init", o.Agent, 0o755); err != nil {
		return m, err
	}
	mdir := path.Join("lib/modules", m.Release)
	keep := map[string]bool{}
	var depLines []string
	for _, n := range sel {
		e := deps[n]
		keep[n] = true
		if err := addFile(c, path.Join(mdir, e.Path), filepath.Join(o.ModulesDir, e.Path), 0o644); err != nil {
			return m, err
		}
		if st, err := os.Stat(filepath.Join(o.ModulesDir, e.Path)); err == nil {
			m.Bytes += st.Size()
		}
		depLines = append(depLines, depLine(e, deps))
	}
	sort.Strings(depLines)
	if err := addBytes(c, path.Join(mdir, "modules.dep"), []byte(strings.Join(depLines, ""))); err != nil {
		return m, err
	}
	alias, err := filterAliases(filepath.Join(o.ModulesDir, "modules.alias"), keep)
	if err != nil {
		return m, err
	}
	if err := addBytes(c, path.Join(mdir, "modules.alias"), alias); err != nil {
		return m, err
	}
	for _, f := range []string{"modules.builtin", "modules.order"} {
		if _, err := os.Stat(filepath.Join(o.ModulesDir, f)); err == nil {
			if err := addFile(c, path.Join(mdir, f), filepath.Join(o.ModulesDir, f), 0o644); err != nil {
				return m, err
			}
		}
	}
	if o.CACerts != "" {
		if err := addFile(c, "etc/ssl/certs/ca-certificates.crt", o.CACerts, 0o644); err != nil {
			return m, err
		}
	}
	if err := c.Close(); err != nil {
		return m, err
	}
	return m, gz.Close()
}

func depLine(e modules.Dep, deps modules.Deps) string {
	var b strings.Builder
	b.WriteString(e.Path)
	b.WriteString(":")
	for _, d := range e.Deps {
		b.WriteString(" ")
		b.WriteString(deps[d].Path)
	}
	b.WriteString("\n")
	return b.String()
}

// SelectModules expands patterns (nil: DefaultModules) against modules.dep
// and returns the dependency closure, sorted, and the parsed modules.dep.
// A pattern matching no module is skipped: kernels differ in what they
// build as modules.
func SelectModules(modulesDir string, patterns []string) ([]string, modules.Deps, error) {
	if patterns == nil {
		patterns = DefaultModules
	}
	f, err := os.Open(filepath.Join(modulesDir, "modules.dep"))
	if err != nil {
		return nil, nil, fmt.Errorf("initramfs: %w (run depmod -b ROOT RELEASE)", err)
	}
	defer f.Close()
	deps, err := modules.ParseDeps(f)
	if err != nil {
		return nil, nil, err
	}
	var names []string
	for _, p := range patterns {
		p = modules.Name(p)
		for n := range deps {
			if modules.Glob(p, n) {
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	order, err := deps.Order(names...)
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(order)
	return order, deps, nil
}

func filterAliases(file string, keep map[string]bool) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	var out bytes.Buffer
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "alias" && keep[modules.Name(f[2])] {
			out.WriteString(line)
			out.WriteByte('\n')
		}
	}
	return out.Bytes(), nil
}

func addFile(c *CPIOWriter, name, src string, perm os.FileMode) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return c.File(name, perm, st.Size(), f)
}

func addBytes(c *CPIOWriter, name string, b []byte) error {
	return c.File(name, 0o644, int64(len(b)), bytes.NewReader(b))
}

// ModulesDir returns <kernelDir>/root/lib/modules/<VERSION> for a
// directory written by scripts/fetch-kernel.sh.
func ModulesDir(kernelDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(kernelDir, "VERSION"))
	if err != nil {
		return "", fmt.Errorf("initramfs: %w (run scripts/fetch-kernel.sh %s)", err, kernelDir)
	}
	return filepath.Join(kernelDir, "root/lib/modules", strings.TrimSpace(string(b))), nil
}

package netboot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path"
	"time"

	"github.com/metal-iaas/metal/pkg/bootfs"
	"github.com/metal-iaas/metal/pkg/pxe"
)

// AgentFiles opens the agent's boot files ("vmlinuz", "initrd") as metald
// serves them over HTTP (internal/agentboot), for GRUB over TFTP.
type AgentFiles interface {
	Open(name string) (bootfs.File, int64, error)
}

// Files of ShimDir.
const (
	shimFile = "shimx64.efi"
	grubFile = "grubx64.efi"
)

// policyFor is the boot policy for one machine: its own UEFI boot chain
// when it has one, else the configured one.
func (s *Service) policyFor(m Machine) pxe.Policy {
	p := s.policy
	if m.UEFIBoot != "" {
		p.UEFIBoot = m.UEFIBoot
	}
	return p
}

// openShimDir opens the directory of shimx64.efi and grubx64.efi; a
// missing file is logged, not fatal (machines told to boot shim cannot
// until it is there: make agent puts both in bin/agent).
func (s *Service) openShimDir() error {
	if s.cfg.ShimDir == "" {
		return nil
	}
	r, err := os.OpenRoot(s.cfg.ShimDir)
	if errors.Is(err, fs.ErrNotExist) {
		// Like the agent's files: logged, not fatal.
		s.log.Warn("Secure Boot chain directory missing: machines booting shim cannot until it exists (scripts/fetch-shim.sh, make agent)",
			"dir", s.cfg.ShimDir)
		return nil
	}
	if err != nil {
		return fmt.Errorf("netboot: shim directory: %w", err)
	}
	for _, n := range []string{shimFile, grubFile} {
		if _, err := r.Stat(n); err != nil {
			s.log.Warn("Secure Boot chain file missing: machines booting shim cannot until it exists (scripts/fetch-shim.sh, make agent)",
				"file", path.Join(s.cfg.ShimDir, n))
		}
	}
	s.shim = r
	return nil
}

// openTFTP is the TFTP server's Dynamic: the Secure Boot chain's files.
//
//	shim/shimx64.efi, shim/grubx64.efi  → ShimDir
//	grub/grub.cfg                        → pxe.GrubConfigText
//	grub/grub.cfg-<mac>                  → the machine's configuration (bootFor, rendered for GRUB)
//	agent/vmlinuz, agent/initrd          → AgentFiles
//
// Other names go on to the TFTP root and the embedded iPXE binaries.
func (s *Service) openTFTP(name string, src netip.Addr) (bootfs.File, int64, error) {
	switch name {
	case pxe.FileShim, pxe.FileGrub:
		if s.shim == nil {
			return nil, 0, fmt.Errorf("netboot: %s: no shim directory: %w", name, fs.ErrNotExist)
		}
		f, err := s.shim.Open(path.Base(name))
		if err != nil {
			return nil, 0, fmt.Errorf("netboot: %s: %w", name, fs.ErrNotExist)
		}
		st, err := f.Stat()
		if err != nil || !st.Mode().IsRegular() {
			f.Close()
			return nil, 0, fmt.Errorf("netboot: %s: not a file: %w", name, fs.ErrNotExist)
		}
		return f, st.Size(), nil
	case pxe.GrubConfig:
		return bytesFile([]byte(pxe.GrubConfigText))
	case pxe.FileAgentKernel, pxe.FileAgentInitrd:
		if s.cfg.AgentFiles == nil {
			return nil, 0, fmt.Errorf("netboot: %s: no agent files: %w", name, fs.ErrNotExist)
		}
		return s.cfg.AgentFiles.Open(path.Base(name))
	}
	if mac, ok := pxe.GrubMachineMAC(name); ok {
		return s.grubConfig(mac, src)
	}
	return nil, 0, fmt.Errorf("netboot: %s: %w", name, fs.ErrNotExist)
}

// grubConfig renders a machine's GRUB configuration: what bootFor says
// it boots, as GRUB commands. An unknown machine gets "not found" (GRUB
// then exits to the firmware); a refused request an access violation.
func (s *Service) grubConfig(mac []byte, src netip.Addr) (bootfs.File, int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, data, err := s.bootFor(ctx, bootRequest{mac: mac, src: src})
	var be *bootError
	if errors.As(err, &be) && be.status == 404 {
		return nil, 0, fmt.Errorf("%w: %w", err, fs.ErrNotExist)
	}
	if err != nil {
		return nil, 0, err
	}
	var buf bytes.Buffer
	if err := s.grub.Render(&buf, data); err != nil {
		s.log.Error("netboot: render grub configuration", "mac", macString(m.MAC), "state", m.State, "err", err)
		return nil, 0, err
	}
	tmpl, _ := pxe.GrubFor(data.Target)
	s.event(ctx, m.MAC, m.Name, EventBootScript, map[string]any{"state": m.State, "script": tmpl, "remote": src.String()})
	return bytesFile(buf.Bytes())
}

// bytesFile serves b as a file.
func bytesFile(b []byte) (bootfs.File, int64, error) {
	return nopCloser{bytes.NewReader(b)}, int64(len(b)), nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

package netboot

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"

	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/pxe"
)

// bootRequest asks what a machine boots now: by MAC, or by UUID
// (/boot.ipxe?uuid=), from address src.
type bootRequest struct {
	mac  net.HardwareAddr
	uuid string
	src  netip.Addr
}

// bootError is why no boot script or configuration is given, with the
// HTTP status /boot.ipxe answers it with.
type bootError struct {
	status int
	msg    string
}

func (e *bootError) Error() string { return e.msg }

// bootFor is the one home of "what does this machine netboot now", for
// iPXE's /boot.ipxe and for GRUB's per-machine configuration over TFTP
// (grub.go): it finds the machine (an unknown MAC is discovered under
// Unknown=discover), bounds requests per source address, checks in full
// mode that the request comes from the machine's own address (a refusal
// is counted and recorded), and returns the machine with the data its
// script is rendered from: the lifecycle's boot for its state
// (inventory.State.Boot) as the target. Errors are *bootError.
func (s *Service) bootFor(ctx context.Context, req bootRequest) (Machine, pxe.ScriptData, error) {
	var (
		m   Machine
		err error
	)
	mac := req.mac
	if mac != nil {
		m, err = s.inv.MachineByMAC(ctx, mac)
	} else {
		m, err = s.inv.MachineByUUID(ctx, req.uuid)
		mac = m.MAC
	}
	src := req.src
	if !s.scriptLimit.Allow(src.String()) {
		s.counters.WithLabelValues("refused_rate").Inc()
		return m, pxe.ScriptData{}, &bootError{http.StatusTooManyRequests, "netboot: too many boot script requests from " + src.String()}
	}
	if errors.Is(err, ErrNotFound) && s.cfg.Unknown == UnknownDiscover && mac != nil {
		if ferr := s.fromMachine(ctx, mac, netip.Addr{}, netip.Addr{}, src); ferr != nil {
			s.refused(ctx, mac, "", src, ferr)
			return m, pxe.ScriptData{}, &bootError{http.StatusForbidden, "netboot: " + ferr.Error()}
		}
		m, err = s.inv.DiscoverMachine(ctx, mac, Hints{})
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return m, pxe.ScriptData{}, &bootError{http.StatusNotFound, "netboot: unknown machine"}
	case err != nil:
		s.log.Error("netboot: script lookup", "mac", macString(mac), "err", err)
		return m, pxe.ScriptData{}, &bootError{http.StatusInternalServerError, "netboot: inventory error"}
	}
	if m.MAC == nil {
		m.MAC = mac
	}
	if ferr := s.fromMachine(ctx, m.MAC, m.IP, m.IP6, src); ferr != nil {
		s.refused(ctx, m.MAC, m.Name, src, ferr)
		return m, pxe.ScriptData{}, &bootError{http.StatusForbidden, "netboot: " + ferr.Error()}
	}
	token := m.Token
	if token == "" {
		token = "TOKEN"
	}
	boot, _ := inventory.State(m.State).Boot()
	base, agent := s.urlsFor(src)
	return m, pxe.ScriptData{Target: pxe.Target(boot), MAC: m.MAC.String(), Name: m.Name, State: m.State,
		URL: base, AgentURL: agent, Token: token}, nil
}

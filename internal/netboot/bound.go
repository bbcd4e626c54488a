package netboot

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// fromMachine checks, in full mode, that src is the address metald
// reserved for the machine (reserved, or reserved6 over IPv6) or leased
// to mac: a boot script goes only to the machine it is for, as the agent
// API and metadata do. Without metald's DHCP there is no address to
// compare with, and any source is accepted.
func (s *Service) fromMachine(ctx context.Context, mac net.HardwareAddr, reserved, reserved6, src netip.Addr) error {
	if src.Is6() && !src.Is4In6() {
		if checked, err := s.v6.fromMachine6(ctx, mac, reserved6, src); checked {
			return err
		}
	}
	if s.cfg.Mode != ModeFull || mac == nil {
		return nil
	}
	if reserved.IsValid() && reserved.Unmap() == src {
		return nil
	}
	l, err := s.inv.Get(ctx, mac)
	if err == nil && l.IP.Unmap() == src && l.Expires.After(time.Now()) {
		return nil
	}
	held := "no address"
	switch {
	case reserved.IsValid():
		held = "reserved address " + reserved.String()
	case err == nil:
		held = "lease " + l.IP.String()
	}
	return fmt.Errorf("boot script for %s asked from %s, which is not its address (%s)", mac, src, held)
}

// refused counts a refused boot script (or GRUB configuration) and
// records a throttled security event.
func (s *Service) refused(ctx context.Context, mac net.HardwareAddr, name string, src netip.Addr, err error) {
	s.counters.WithLabelValues("refused_foreign").Inc()
	if s.refusals.Allow(src.String() + "|" + mac.String()) {
		s.event(ctx, mac, name, EventScriptRefused, map[string]any{"source": src.String(), "error": err.Error()})
	}
}

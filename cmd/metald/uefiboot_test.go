package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/metal-iaas/metal/pkg/pxe"
)

func TestUEFIBootFlags(t *testing.T) {
	base := func() Config {
		return Config{DataDir: "/var/lib/metald", DHCPMode: "off", HTTP: "127.0.0.1:8080", Unknown: "ignore", TFTP: "127.0.0.1:69"}
	}
	c := base()
	nc, err := c.netbootConfig()
	if err != nil || nc.UEFIBoot != pxe.UEFIBootIPXE || nc.ShimDir != filepath.Join("/var/lib/metald", "agent") {
		t.Fatalf("default: %v %q %q", err, nc.UEFIBoot, nc.ShimDir)
	}
	c = base()
	c.UEFIBoot, c.AgentDir = "shim", "/srv/agent"
	if nc, err = c.netbootConfig(); err != nil || nc.UEFIBoot != pxe.UEFIBootShim || nc.ShimDir != "/srv/agent" {
		t.Fatalf("shim: %v %q %q", err, nc.UEFIBoot, nc.ShimDir)
	}
	c.ShimDir = "/srv/shim"
	if nc, _ = c.netbootConfig(); nc.ShimDir != "/srv/shim" {
		t.Errorf("--shim-dir: %q", nc.ShimDir)
	}
	c = base()
	c.UEFIBoot = "grub"
	if _, err := c.netbootConfig(); err == nil || !strings.Contains(err.Error(), "--uefi-boot") {
		t.Errorf("--uefi-boot grub: %v, want an error naming the flag", err)
	}
	c = base()
	c.UEFIBoot, c.TFTP = "shim", ""
	if _, err := c.netbootConfig(); err == nil || !strings.Contains(err.Error(), "TFTP") {
		t.Errorf("shim without TFTP: %v, want an error saying TFTP", err)
	}
}

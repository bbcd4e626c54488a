package main

import (
	"testing"
	"time"
)

func TestTFTPDefaultsWithDHCP(t *testing.T) {
	base := Config{DataDir: "d", HTTP: "10.0.0.1:8080", Unknown: "ignore", LogFormat: "text", LogLevel: "info",
		DHCPLease: time.Hour, MaxImageSize: 1, MaxImageBuffer: 1}
	cases := []struct {
		mode, tftp, want string
	}{
		{"off", "", "off"},
		{"off", ":1069", ":1069"},
		{"proxy", "", ":69"},
		{"proxy", "off", "off"},
		{"off", "off", "off"},
	}
	for _, c := range cases {
		cfg := base
		cfg.DHCPMode, cfg.TFTP = c.mode, c.tftp
		if c.mode != "off" {
			cfg.Interface = "lo"
		}
		cfg = cfg.withDefaults()
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		nc, err := cfg.netbootConfig()
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if nc.TFTPAddr != c.want {
			t.Errorf("dhcp %s, --tftp %q: TFTP %q, want %q", c.mode, c.tftp, nc.TFTPAddr, c.want)
		}
	}
}

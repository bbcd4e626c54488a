package main

import (
	"testing"
	"time"

	"github.com/metal-iaas/metal/internal/retention"
)

func TestRetentionFlags(t *testing.T) {
	tests := []struct {
		age     string
		rows    int
		want    retention.Config
		wantErr bool
	}{
		{age: "30d", rows: retention.DefaultMaxRows, want: retention.Config{MaxAge: 30 * 24 * time.Hour, MaxRows: retention.DefaultMaxRows}},
		{age: "720h", rows: 0, want: retention.Config{MaxAge: 720 * time.Hour}},
		{age: "0", rows: 0, want: retention.Config{}},
		{age: "30 days", wantErr: true},
		{age: "-1d", wantErr: true},
		{age: "30d", rows: -1, wantErr: true},
	}
	for _, tt := range tests {
		cfg := Config{DataDir: "d", HTTP: ":8080", DHCPMode: "off", Unknown: "ignore", LogFormat: "text", LogLevel: "info",
			MaxImageSize: 1, MaxImageBuffer: 1, EventRetention: tt.age, EventMaxRows: tt.rows}
		err := cfg.Validate()
		if (err != nil) != tt.wantErr {
			t.Errorf("--event-retention %q --event-max-rows %d: %v", tt.age, tt.rows, err)
			continue
		}
		if err != nil {
			continue
		}
		got, err := cfg.retentionConfig()
		if err != nil || got != tt.want {
			t.Errorf("--event-retention %q --event-max-rows %d: %+v, %v; want %+v", tt.age, tt.rows, got, err, tt.want)
		}
	}
}

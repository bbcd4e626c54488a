package main

import (
	"fmt"

	"github.com/metal-iaas/metal/internal/retention"
)

// retentionConfig turns --event-retention and --event-max-rows into the
// event retention service's configuration, naming the flag at fault.
func (c *Config) retentionConfig() (retention.Config, error) {
	age, err := retention.ParseAge(c.EventRetention)
	if err != nil {
		return retention.Config{}, fmt.Errorf("--event-retention: %w", err)
	}
	if c.EventMaxRows < 0 {
		return retention.Config{}, fmt.Errorf("--event-max-rows %d: want a number of events, or 0 for no limit", c.EventMaxRows)
	}
	rc := retention.Config{MaxAge: age, MaxRows: c.EventMaxRows}
	if err := rc.Validate(); err != nil {
		return retention.Config{}, err
	}
	return rc, nil
}

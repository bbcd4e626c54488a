package agent

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"golang.org/x/sys/unix"
)

// WaitEntropy returns once the kernel's CRNG is initialised, which TLS
// needs (crypto/rand blocks until then). On a machine without RDRAND or
// virtio-rng — QEMU's qemu64 CPU under TCG, some old servers — that can
// take a while early in boot: say so on the console instead of hanging
// silently. Nothing else in the agent needs cryptographic randomness
// (DHCP transaction ids come from /dev/urandom).
func WaitEntropy(ctx context.Context, log *slog.Logger) error {
	var b [1]byte
	if _, err := unix.Getrandom(b[:], unix.GRND_NONBLOCK); err == nil {
		return nil
	} else if !errors.Is(err, unix.EAGAIN) {
		return nil // no getrandom(2): crypto/rand falls back by itself
	}
	log.Warn("waiting for the kernel's random number generator before talking TLS (no RDRAND or virtio-rng on this machine)")
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := unix.Getrandom(b[:], 0) // blocks; the kernel's jitter entropy seeds it
		done <- err
	}()
	select {
	case err := <-done:
		log.Info("random number generator ready", "waited", time.Since(start).Round(time.Millisecond))
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

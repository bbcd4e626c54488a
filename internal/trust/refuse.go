package trust

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metal-iaas/metal/pkg/inventory"
)

// EventAppender records events (the inventory).
type EventAppender interface {
	AppendEvent(ctx context.Context, e inventory.Event) (inventory.Event, error)
}

// Refusals is how a service records what it refused from the
// provisioning network: a counter by reason in /metrics, and a security
// event naming the source, throttled per reason, source and machine so
// that a flood costs one event a minute, not one a request.
type Refusals struct {
	what     string
	event    string
	counter  *prometheus.CounterVec
	throttle *Throttle
	events   EventAppender
	log      *slog.Logger
}

// NewRefusals registers metald_<what>_refused_total with reg (when not
// nil); events get type security.<what>_refused.
func NewRefusals(what, help string, events EventAppender, reg prometheus.Registerer, log *slog.Logger) *Refusals {
	r := &Refusals{what: what, event: "security." + what + "_refused", events: events, log: log, throttle: NewThrottle(0),
		counter: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metald_" + what + "_refused_total", Help: help}, []string{"reason"})}
	if reg != nil {
		reg.MustRegister(r.counter)
	}
	return r
}

// Refuse counts reason and records the event (machine may be empty).
// The request itself is the caller's to answer.
func (r *Refusals) Refuse(ctx context.Context, reason, machine string, src netip.Addr, request string, err error) {
	r.counter.WithLabelValues(reason).Inc()
	if !r.throttle.Allow(reason + "|" + src.String() + "|" + machine) {
		return
	}
	msg := fmt.Sprintf("%s %s refused: %v", r.what, request, err)
	ev := inventory.Event{Machine: machine, Type: r.event, Message: msg,
		Data: map[string]any{"source": src.String(), "reason": reason, "request": request}}
	if _, aerr := r.events.AppendEvent(context.WithoutCancel(ctx), ev); aerr != nil {
		r.log.Warn("record security event", "err", aerr, "event", msg)
	}
}

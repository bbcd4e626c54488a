package agent

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// LogTail is a slog.Handler that passes records on to another handler and
// keeps the recent ones at Info or above as text lines, so that the agent
// can attach them to the next progress report (Progress.Log) and the
// operator sees retries and warnings while a task runs.
type LogTail struct {
	next  slog.Handler
	state *tailState
	attrs string
}

type tailState struct {
	mu    sync.Mutex
	lines []string
	max   int
}

// NewLogTail wraps next, keeping at most max lines between drains.
func NewLogTail(next slog.Handler, max int) *LogTail {
	return &LogTail{next: next, state: &tailState{max: max}}
}

// Enabled implements slog.Handler.
func (h *LogTail) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

// Handle implements slog.Handler.
func (h *LogTail) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelInfo {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s %s%s", r.Time.UTC().Format(time.TimeOnly), r.Level, r.Message, h.attrs)
		r.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
			return true
		})
		s := h.state
		s.mu.Lock()
		s.lines = append(s.lines, b.String())
		if len(s.lines) > s.max {
			s.lines = s.lines[len(s.lines)-s.max:]
		}
		s.mu.Unlock()
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

// WithAttrs implements slog.Handler.
func (h *LogTail) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range as {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	return &LogTail{next: h.next.WithAttrs(as), state: h.state, attrs: b.String()}
}

// WithGroup implements slog.Handler (groups are flattened in the tail).
func (h *LogTail) WithGroup(name string) slog.Handler {
	return &LogTail{next: h.next.WithGroup(name), state: h.state, attrs: h.attrs}
}

// Drain returns and forgets the kept lines.
func (h *LogTail) Drain() []string {
	if h == nil {
		return nil
	}
	s := h.state
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.lines
	s.lines = nil
	return out
}

package inventory

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestBoundText(t *testing.T) {
	long := strings.Repeat("v", 4<<20)
	euro := strings.Repeat("€", 1000) // 3 bytes each: the cut falls inside one
	tests := []struct {
		name, in, want string
		truncated      bool
	}{
		{name: "plain", in: "agent 1.2.3", want: "agent 1.2.3"},
		{name: "empty", in: "", want: ""},
		{name: "newline", in: "line1\nforged: line2", want: `line1\nforged: line2`},
		{name: "ansi", in: "\x1b[31mred\x1b[0m", want: `\x1b[31mred\x1b[0m`},
		{name: "cr tab nul del", in: "a\rb\tc\x00d\x7f", want: `a\rb\tc\x00d\x7f`},
		{name: "c1 and bidi", in: "x\u0085y\u202ez\u2028", want: `x\x85y\u202ez\u2028`},
		{name: "invalid utf8", in: "a\xffb", want: "a\uFFFDb"},
		{name: "unicode kept", in: "größe → 5 GiB", want: "größe → 5 GiB"},
		{name: "exactly the cap", in: strings.Repeat("a", MaxEventField), want: strings.Repeat("a", MaxEventField)},
		{name: "4 MiB", in: long, want: strings.Repeat("v", MaxEventField-len(TruncatedMark)) + TruncatedMark, truncated: true},
		{name: "multibyte cut", in: euro, truncated: true},
		{name: "escapes grow past the cap", in: strings.Repeat("\n", 600), truncated: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := boundText(tt.in)
			if tt.want != "" && got != tt.want {
				t.Fatalf("boundText = %.80q…, want %.80q…", got, tt.want)
			}
			if len(got) > MaxEventField || !utf8.ValidString(got) {
				t.Fatalf("%d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
			}
			if strings.HasSuffix(got, TruncatedMark) != tt.truncated {
				t.Fatalf("truncation mark: %v, want %v (%.80q)", !tt.truncated, tt.truncated, got)
			}
			if strings.ContainsFunc(got, unsafeRune) {
				t.Fatalf("control character left in %q", got)
			}
			if again := boundText(got); again != got {
				t.Fatalf("not idempotent: %q → %q", got, again)
			}
		})
	}
}

func TestBoundValueData(t *testing.T) {
	type report struct {
		Version string `json:"version"`
	}
	many := make([]string, 1000)
	for i := range many {
		many[i] = "x"
	}
	nested := map[string]any{}
	cur := nested
	for range 20 {
		next := map[string]any{}
		cur["n"] = next
		cur = next
	}
	d := boundEvent(Event{Type: "t", Data: map[string]any{
		"struct": report{Version: strings.Repeat("v", 1<<20)},
		"list":   many,
		"nested": nested,
		"job":    int64(7),
		"key\n":  "v",
	}}).Data
	if s := d["struct"].(map[string]any)["version"].(string); len(s) > MaxEventField {
		t.Fatalf("struct field kept %d bytes", len(s))
	}
	if l := d["list"].([]string); len(l) != maxEventItems+1 || l[maxEventItems] != TruncatedMark {
		t.Fatalf("list kept %d entries", len(l))
	}
	if d["job"] != int64(7) {
		t.Fatalf("number changed: %#v", d["job"])
	}
	if _, ok := d[`key\n`]; !ok {
		t.Fatalf("key not escaped: %v", d)
	}
	depth := 0
	for v := any(d["nested"]); ; depth++ {
		m, ok := v.(map[string]any)
		if !ok {
			break
		}
		v = m["n"]
	}
	if depth > maxEventDepth {
		t.Fatalf("data nests %d deep", depth)
	}
}

// TestEventsBoundedAtRest: whatever path an event takes into either store
// (AppendEvent with text from an agent, or a state change whose reason
// came from one), what is stored and listed is bounded and free of
// control characters.
func TestEventsBoundedAtRest(t *testing.T) {
	huge := strings.Repeat("9", 4<<20)
	tests := []struct {
		name    string
		message string
		data    map[string]any
		wantMsg string
	}{
		{name: "4 MiB agent version", message: "agent registered", data: map[string]any{"agent_version": huge, "job": 3},
			wantMsg: "agent registered"},
		{name: "newline in message", message: "booting\nmachine.state ready → provisioned", wantMsg: `booting\nmachine.state ready → provisioned`},
		{name: "ANSI in message", message: "\x1b[31mdisk failed\x1b[0m", data: map[string]any{"user_agent": "curl\x1b]0;pwned\x07"},
			wantMsg: `\x1b[31mdisk failed\x1b[0m`},
		{name: "4 MiB message", message: huge, wantMsg: huge[:MaxEventField-len(TruncatedMark)] + TruncatedMark},
	}
	forEachStore(t, func(t *testing.T, env *testEnv) {
		s := env.s
		ctx := context.Background()
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.AppendEvent(ctx, Event{Type: "agent.test", Message: tt.message, Data: tt.data})
				if err != nil {
					t.Fatal(err)
				}
				evs, err := s.ListEvents(ctx, EventFilter{Since: got.ID - 1, Limit: 1})
				if err != nil || len(evs) != 1 {
					t.Fatalf("list: %v, %d events", err, len(evs))
				}
				for _, e := range []Event{got, evs[0]} {
					if e.Message != tt.wantMsg {
						t.Fatalf("message %.80q…, want %.80q…", e.Message, tt.wantMsg)
					}
					checkBounded(t, e)
				}
				if tt.data["agent_version"] != nil {
					v := evs[0].Data["agent_version"].(string)
					if !strings.HasSuffix(v, TruncatedMark) {
						t.Fatalf("agent_version not marked as truncated: %.40q", v)
					}
				}
			})
		}
		t.Run("transition reason", func(t *testing.T) {
			if _, err := s.CreateMachine(ctx, Machine{Name: "m1", MACs: []string{"52:54:00:aa:00:01"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Transition(ctx, "m1", StateMaintenance, "agent said\n\x1b[2J"+huge); err != nil {
				t.Fatal(err)
			}
			evs, err := s.ListEvents(ctx, EventFilter{Machine: "m1", Type: "machine.state"})
			if err != nil || len(evs) != 1 {
				t.Fatalf("list: %v, %d events", err, len(evs))
			}
			checkBounded(t, evs[0])
			if !strings.Contains(evs[0].Message, `agent said\n\x1b[2J`) {
				t.Fatalf("message %.80q", evs[0].Message)
			}
		})
	})
}

// checkBounded fails t if any string of e is too long or holds a control
// character.
func checkBounded(t *testing.T, e Event) {
	t.Helper()
	var check func(where string, v any)
	check = func(where string, v any) {
		switch x := v.(type) {
		case string:
			if len(x) > MaxEventField || strings.ContainsFunc(x, unsafeRune) {
				t.Fatalf("%s: %d bytes: %.80q", where, len(x), x)
			}
		case map[string]any:
			for k, e := range x {
				check(where+"."+k, k)
				check(where+"."+k, e)
			}
		case []any:
			for _, e := range x {
				check(where+"[]", e)
			}
		}
	}
	check("message", e.Message)
	check("data", e.Data)
}

package inventory

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Events carry text that came from the network (an agent's version, log
// lines and errors, a client's user agent, a request path). boundEvent is
// the one place that text is made safe to keep and to show: every string
// of an event, its data included, is capped in length and stripped of
// control characters before either store writes it, whoever built it.

const (
	// MaxEventField is the most bytes one string of an event keeps.
	MaxEventField = 1024
	// maxEventItems is the most entries one list or map in an event's data
	// keeps.
	maxEventItems = 64
	// maxEventDepth is how deep an event's data may nest.
	maxEventDepth = 8
	// TruncatedMark ends a string that boundEvent cut short.
	TruncatedMark = "…(truncated)"
)

// boundEvent returns e with every string bounded by boundText and its data
// bounded in size and depth. It is idempotent.
func boundEvent(e Event) Event {
	e.Machine = boundText(e.Machine)
	e.MAC = boundText(e.MAC)
	e.Type = boundText(e.Type)
	e.Message = boundText(e.Message)
	if e.Data != nil {
		d, _ := boundValue(e.Data, 0).(map[string]any)
		e.Data = d
	}
	return e
}

// boundText returns s as valid UTF-8 without control characters (each
// shown as a Go-style escape such as \n or \x1b) and at most
// MaxEventField bytes long, cut on a character boundary and ended with
// TruncatedMark when it was longer.
func boundText(s string) string {
	if len(s) <= MaxEventField && isPlain(s) {
		return s
	}
	var b strings.Builder
	limit := MaxEventField - len(TruncatedMark)
	cut := -1 // b's length at the last character boundary that leaves room for the mark
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		piece := string(r) // utf8.RuneError (U+FFFD) for invalid bytes
		if unsafeRune(r) {
			piece = escapeRune(r)
		}
		if b.Len()+len(piece) > MaxEventField {
			return b.String()[:cut] + TruncatedMark
		}
		if cut < 0 && b.Len()+len(piece) > limit {
			cut = b.Len()
		}
		b.WriteString(piece)
	}
	return b.String()
}

// isPlain reports whether s is valid UTF-8 with nothing to escape.
func isPlain(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unsafeRune(r) {
			return false
		}
	}
	return true
}

// unsafeRune reports whether r would move a terminal's cursor, change its
// colours, or reorder or split the text around it: C0 and C1 controls,
// DEL, the Unicode line and paragraph separators and the bidirectional
// overrides and isolates.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r < 0xa0:
		return true
	case r == 0x2028, r == 0x2029, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

func escapeRune(r rune) string {
	switch r {
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	case '\t':
		return `\t`
	}
	if r < 0x100 {
		return fmt.Sprintf(`\x%02x`, r)
	}
	return fmt.Sprintf(`\u%04x`, r)
}

// boundValue bounds one value of an event's data. Strings are bounded as
// text; lists and maps keep maxEventItems entries and maxEventDepth
// levels; values of other types (structs, typed slices) are first turned
// into their JSON form, which is what the store keeps anyway.
func boundValue(v any, depth int) any {
	switch x := v.(type) {
	case nil, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64, json.Number:
		return v
	case string:
		return boundText(x)
	}
	if depth >= maxEventDepth {
		return TruncatedMark
	}
	switch x := v.(type) {
	case []string:
		out := make([]string, 0, min(len(x), maxEventItems))
		for i, s := range x {
			if i == maxEventItems {
				out = append(out, TruncatedMark)
				break
			}
			out = append(out, boundText(s))
		}
		return out
	case []any:
		out := make([]any, 0, min(len(x), maxEventItems))
		for i, e := range x {
			if i == maxEventItems {
				out = append(out, TruncatedMark)
				break
			}
			out = append(out, boundValue(e, depth+1))
		}
		return out
	case map[string]string:
		out := make(map[string]any, min(len(x), maxEventItems))
		for i, k := range sortedKeys(x) {
			if i == maxEventItems {
				out["…"] = TruncatedMark
				break
			}
			out[boundText(k)] = boundText(x[k])
		}
		return out
	case map[string]any:
		out := make(map[string]any, min(len(x), maxEventItems))
		for i, k := range sortedKeys(x) {
			if i == maxEventItems {
				out["…"] = TruncatedMark
				break
			}
			out[boundText(k)] = boundValue(x[k], depth+1)
		}
		return out
	}
	b, err := json.Marshal(v)
	if err != nil {
		return boundText(fmt.Sprint(v))
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		return boundText(string(b))
	}
	return boundValue(generic, depth)
}

// sortedKeys returns m's keys in order, so that a map cut short keeps the
// same entries every time.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

package wiretest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

type Inner struct{ A, B string }

type sample struct {
	Inner
	S  string
	N  int64
	F  float64
	OK bool
	T  time.Time
	P  *Inner
	L  []string
	M  map[string]any
	R  json.RawMessage
	u  int
}

func TestFillSetsEverythingUnsetFindsIt(t *testing.T) {
	var s sample
	if got := fmt.Sprint(Unset(s)); got != "[A B S N F OK T P L M R]" {
		t.Fatalf("Unset of a zero sample: %s", got)
	}
	Fill(&s)
	if got := Unset(s); len(got) != 0 {
		t.Fatalf("Fill left %v", got)
	}
	if s.P.A == "" || s.M["x"] != "x" || string(s.R) != `{"x":1}` || !s.T.Equal(Time) || s.u != 0 {
		t.Fatalf("filled %+v", s)
	}
}

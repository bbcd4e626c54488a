package itest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestEventRetention against the real binary: metald started with
// --event-max-rows prunes the oldest events at start, counts them in
// /metrics, and metalctl events shows only the newest.
func TestEventRetention(t *testing.T) {
	m := StartMetald(t, "")
	for i := range 12 {
		wantOK(t, m.Ctl("machine", "add", fmt.Sprintf("ret-%02d", i), "--mac", fmt.Sprintf("52:54:00:ef:00:%02x", i)), "add")
	}
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	m.Args = append(m.Args, "--event-max-rows", "5", "--event-retention", "30d")
	m.Start()

	deadline := time.Now().Add(30 * time.Second)
	for {
		pruned := metric(t, m.URL, "metald_events_pruned_total")
		if pruned == "7" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metald_events_pruned_total = %q after 30 s, want 7\n%s", pruned, m.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	r := m.Ctl("events", "--limit", "0", "-o", "json")
	wantOK(t, r, "events")
	var evs []struct {
		Machine string `json:"machine"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &evs); err != nil {
		t.Fatalf("events: %v\n%s", err, r.Stdout)
	}
	if len(evs) != 5 || evs[0].Machine != "ret-07" || evs[4].Machine != "ret-11" {
		t.Fatalf("events left: %+v, want the newest 5 (ret-07 … ret-11)", evs)
	}
	if !strings.Contains(m.Log(), "events pruned") {
		t.Fatalf("no log line for the prune:\n%s", m.Log())
	}
}

// metric returns the value of an unlabelled metric on /metrics ("" when
// it is absent).
func metric(t *testing.T, base, name string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

// getPage fetches path and returns its events and the next page's path
// from the Link header ("" when there is none).
func (f *fixture) getPage(t *testing.T, path string) ([]metalapi.Event, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	var evs []metalapi.Event
	if err := json.Unmarshal(b, &evs); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	next := ""
	if l := resp.Header.Get("Link"); l != "" {
		m := regexp.MustCompile(`^<([^>]+)>; rel="next"$`).FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("Link %q", l)
		}
		next = m[1]
	}
	return evs, next
}

func fillEvents(t *testing.T, f *fixture, n int) []int64 {
	t.Helper()
	ids := make([]int64, 0, n)
	for i := range n {
		typ := "test.a"
		if i%5 == 0 {
			typ = "test.b"
		}
		e, err := f.store.AppendEvent(context.Background(), inventory.Event{Type: typ, Message: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	return ids
}

// TestEventsPaginated: 5,000 events never come back in one response; the
// Link header walks every page, forward and backward, with filters kept.
func TestEventsPaginated(t *testing.T) {
	f := newFixture(t)
	ids := fillEvents(t, f, 5000)

	evs, next := f.getPage(t, "/api/v1/events")
	if len(evs) != metalapi.DefaultEventLimit || evs[0].ID != ids[0] || next == "" {
		t.Fatalf("default page: %d events from %d, next %q", len(evs), evs[0].ID, next)
	}
	if evs, _ := f.getPage(t, "/api/v1/events?limit=100000"); len(evs) != metalapi.MaxEventLimit {
		t.Fatalf("limit=100000 answered %d events, want %d", len(evs), metalapi.MaxEventLimit)
	}

	tests := []struct {
		name  string
		first string
		want  []int64
		pages int
	}{
		{name: "forward", first: "/api/v1/events?limit=1000", want: ids, pages: 5},
		{name: "forward uneven", first: "/api/v1/events?limit=700", want: ids, pages: 8},
		{name: "forward filtered", first: "/api/v1/events?type=test.b&limit=300", want: every5(ids), pages: 4},
		{name: "forward from since", first: fmt.Sprintf("/api/v1/events?since=%d&limit=1000", ids[4499]), want: ids[4500:], pages: 1},
		{name: "backward", first: "/api/v1/events?order=newest&limit=1000", want: ids, pages: 5},
		{name: "backward from before", first: fmt.Sprintf("/api/v1/events?order=newest&before=%d", ids[250]), want: ids[:250], pages: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int64
			pages := 0
			for path := tt.first; path != ""; pages++ {
				if pages > 100 {
					t.Fatal("more than 100 pages")
				}
				var evs []metalapi.Event
				evs, path = f.getPage(t, path)
				var page []int64
				for i, e := range evs {
					if i > 0 && e.ID <= evs[i-1].ID {
						t.Fatalf("page not oldest first: %d after %d", e.ID, evs[i-1].ID)
					}
					page = append(page, e.ID)
				}
				if strings.Contains(tt.first, "order=newest") {
					got = append(page, got...)
				} else {
					got = append(got, page...)
				}
			}
			if pages != tt.pages {
				t.Errorf("%d pages, want %d", pages, tt.pages)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("pages hold %d events (%v…), want %d", len(got), head(got), len(tt.want))
			}
		})
	}
}

func every5(ids []int64) []int64 {
	var out []int64
	for i := 0; i < len(ids); i += 5 {
		out = append(out, ids[i])
	}
	return out
}

func head(ids []int64) []int64 { return ids[:min(len(ids), 5)] }

func TestEventsPageRefusals(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		path, msg string
	}{
		{"/api/v1/events?before=x", "before"},
		{"/api/v1/events?limit=0", "limit"},
		{"/api/v1/events?order=sideways", "order"},
		{"/api/v1/events?order=newest&wait=1s", "wait and follow"},
		{"/api/v1/events?before=5&follow=true", "wait and follow"},
	}
	for _, tt := range tests {
		status, e, b := f.call(t, "GET", tt.path, "")
		if status != 400 || e.Code != metalapi.CodeInvalid || !strings.Contains(e.Error, tt.msg) {
			t.Errorf("GET %s: %d %s, want 400 naming %q", tt.path, status, b, tt.msg)
		}
	}
}

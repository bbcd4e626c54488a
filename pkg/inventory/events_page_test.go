package inventory

import (
	"context"
	"testing"
)

// TestListEventsPages: a window of event ids (Since, Before) read from
// either end, always returned oldest first.
func TestListEventsPages(t *testing.T) {
	forEachStore(t, func(t *testing.T, env *testEnv) {
		s := env.s
		ctx := context.Background()
		var ids []int64
		for i := range 20 {
			typ := "test.even"
			if i%2 == 1 {
				typ = "test.odd"
			}
			e, err := s.AppendEvent(ctx, Event{Type: typ})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, e.ID)
		}
		tests := []struct {
			name string
			f    EventFilter
			want []int64
		}{
			{name: "oldest", f: EventFilter{Limit: 3}, want: ids[:3]},
			{name: "oldest after since", f: EventFilter{Since: ids[4], Limit: 3}, want: ids[5:8]},
			{name: "newest", f: EventFilter{Newest: true, Limit: 3}, want: ids[17:]},
			{name: "newest before", f: EventFilter{Newest: true, Before: ids[10], Limit: 3}, want: ids[7:10]},
			{name: "window from the start", f: EventFilter{Since: ids[2], Before: ids[6]}, want: ids[3:6]},
			{name: "window from the end", f: EventFilter{Since: ids[2], Before: ids[6], Newest: true, Limit: 2}, want: ids[4:6]},
			{name: "newest filtered", f: EventFilter{Newest: true, Type: "test.odd", Limit: 2}, want: []int64{ids[17], ids[19]}},
			{name: "before the first", f: EventFilter{Newest: true, Before: ids[0], Limit: 5}, want: nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				evs, err := s.ListEvents(ctx, tt.f)
				if err != nil {
					t.Fatal(err)
				}
				var got []int64
				for _, e := range evs {
					got = append(got, e.ID)
				}
				if len(got) != len(tt.want) {
					t.Fatalf("ids %v, want %v", got, tt.want)
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Fatalf("ids %v, want %v", got, tt.want)
					}
				}
			})
		}
	})
}

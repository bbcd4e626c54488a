package client

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/metal-iaas/metal/internal/api"
	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

func TestListEventsPages(t *testing.T) {
	ctx := context.Background()
	store, err := inventory.OpenSQLite(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	_, secret, err := store.CreateToken(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	eng := gin.New()
	api.New(store, slog.New(slog.NewTextHandler(io.Discard, nil))).Routes(eng)
	srv := httptest.NewServer(eng)
	defer srv.Close()
	c, err := New(srv.URL, secret)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for range 2500 {
		e, err := store.AppendEvent(ctx, inventory.Event{Type: "test.fill"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	tests := []struct {
		name string
		q    metalapi.EventQuery
		max  int
		want []int64
	}{
		{name: "all", want: ids},
		{name: "latest 1500", q: metalapi.EventQuery{Newest: true}, max: 1500, want: ids[1000:]},
		{name: "latest all", q: metalapi.EventQuery{Newest: true}, want: ids},
		{name: "after since", q: metalapi.EventQuery{Since: ids[99]}, max: 10, want: ids[100:110]},
		{name: "after since, all", q: metalapi.EventQuery{Since: ids[1999]}, want: ids[2000:]},
		{name: "small pages", q: metalapi.EventQuery{Limit: 7}, max: 30, want: ids[:30]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := c.ListEvents(ctx, tt.q, tt.max)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != len(tt.want) {
				t.Fatalf("%d events, want %d", len(evs), len(tt.want))
			}
			for i, e := range evs {
				if e.ID != tt.want[i] {
					t.Fatalf("event %d: id %d, want %d", i, e.ID, tt.want[i])
				}
			}
		})
	}
	// One page by default is metald's default page, and says where the
	// next one is.
	evs, next, err := c.EventPage(ctx, metalapi.EventQuery{})
	if err != nil || len(evs) != metalapi.DefaultEventLimit || next == nil || next.Since != evs[len(evs)-1].ID {
		t.Fatalf("default page: %d events, next %+v, %v", len(evs), next, err)
	}
}

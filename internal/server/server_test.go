package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/metal-iaas/metal/pkg/inventory"
)

func TestMetricsAndGracefulShutdown(t *testing.T) {
	store, err := inventory.OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	store.CreateMachine(context.Background(), inventory.Machine{Name: "m1", MACs: []string{"52:54:00:aa:00:01"}})

	s := New(Config{Addr: "127.0.0.1:0"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.Registry().MustRegister(NewMachineStateCollector(store))
	release, entered := make(chan struct{}), make(chan struct{})
	s.Router().GET("/slow", func(c *gin.Context) {
		close(entered)
		<-release
		c.String(http.StatusOK, "finished")
	})
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx) }()

	for _, p := range []string{"/healthz", "/nowhere"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`metald_machines{state="new"} 1`,
		`metald_machines{state="ready"} 0`,
		`metald_http_requests_total{code="200",method="GET",route="/healthz"} 1`,
		`metald_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// A request in flight when shutdown starts still completes.
	slow := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			slow <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- string(b)
	}()
	<-entered // the request is in flight
	cancel()
	time.Sleep(100 * time.Millisecond) // let the shutdown begin
	close(release)
	if got := <-slow; got != "finished" {
		t.Fatalf("in-flight request during shutdown: %q", got)
	}
	if err := <-runErr; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/metal-iaas/metal/internal/api"
	"github.com/metal-iaas/metal/internal/images"
	"github.com/metal-iaas/metal/internal/jobs"
	"github.com/metal-iaas/metal/internal/power"
	"github.com/metal-iaas/metal/pkg/bmc"
	"github.com/metal-iaas/metal/pkg/inventory"
)

// TestOpenAPICoversEveryRoute keeps the document honest: every /api/v1
// route metald serves (its own and those other packages contribute) is
// described, and every described path is served.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	store, err := inventory.OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	gin.SetMode(gin.ReleaseMode)
	eng := gin.New()
	a := api.New(store, log)
	a.Routes(eng)
	imgs, err := images.New(images.Config{Dir: t.TempDir()}, store, log)
	if err != nil {
		t.Fatal(err)
	}
	imgs.Routes(eng, a.Auth(), a.Fail)
	mgr, err := bmc.NewManager(bmc.Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	pw := power.New(store, mgr, 0, log)
	pw.Routes(eng, a.Auth(), a.Fail)
	jobs.New(jobs.Config{}, store, pw, log).Routes(eng, a.Auth(), a.Fail)

	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`:([a-z]+)`)
	served := map[string]bool{}
	for _, r := range eng.Routes() {
		if !strings.HasPrefix(r.Path, "/api/v1/") {
			continue
		}
		p := param.ReplaceAllString(strings.TrimPrefix(r.Path, "/api/v1"), "{$1}")
		if p == "/images/" {
			p = "/images"
		}
		served[strings.ToLower(r.Method)+" "+p] = true
		ops, ok := doc.Paths[p]
		if !ok {
			t.Errorf("route %s %s is not in openapi.json", r.Method, p)
			continue
		}
		if _, ok := ops[strings.ToLower(r.Method)]; !ok {
			t.Errorf("openapi.json has %s but not its %s operation", p, r.Method)
		}
	}
	for p, ops := range doc.Paths {
		for op := range ops {
			if op == "parameters" {
				continue
			}
			if !served[op+" "+p] {
				t.Errorf("openapi.json describes %s %s, which is not served", op, p)
			}
		}
	}
}

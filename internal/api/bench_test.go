package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/metal-iaas/metal/pkg/inventory"
)

// BenchmarkListMachinesAPI10k measures GET /api/v1/machines with 10,000
// machines: HTTP round trip on loopback, auth, SQLite and JSON encoding.
// Goal (issue 2): under 100 ms per listing.
func BenchmarkListMachinesAPI10k(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	for i := range 10000 {
		_, err := f.store.CreateMachine(ctx, inventory.Machine{
			Name: fmt.Sprintf("node-%05d", i),
			MACs: []string{fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)},
			Tags: map[string]string{"rack": fmt.Sprintf("r%02d", i%40)},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/api/v1/machines", nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	b.ResetTimer()
	var n int64
	for b.Loop() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(err, resp.Status)
		}
		n, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b.ReportMetric(float64(n)/1e6, "MB/listing")
}

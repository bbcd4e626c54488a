package agent

import (
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestTransportTrustsMetaldsCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer srv.Close()
	log := slog.New(slog.DiscardHandler)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	for _, tc := range []struct {
		name  string
		write bool
		ok    bool
	}{
		{"without the CA file", false, false},
		{"with the CA file", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.write {
				os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
			}
			hc := &http.Client{Transport: Transport(caFile, log)}
			resp, err := hc.Get(srv.URL)
			if err == nil {
				resp.Body.Close()
			}
			if (err == nil) != tc.ok {
				t.Errorf("GET over TLS: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

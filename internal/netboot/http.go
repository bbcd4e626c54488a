package netboot

import (
	"bytes"
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/metal-iaas/metal/internal/trust"
	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/pxe"
)

// Routes adds GET /boot.ipxe and GET|HEAD /ipxe/:file to r.
func (s *Service) Routes(r gin.IRouter) {
	r.GET("/boot.ipxe", func(c *gin.Context) { s.ServeScript(c.Writer, c.Request) })
	bin := func(c *gin.Context) { s.files.ServeFile(c.Writer, c.Request, c.Param("file")) }
	r.GET("/ipxe/:file", bin)
	r.HEAD("/ipxe/:file", bin)
}

// Handler returns the same routes on a plain http.Handler (tests, tools).
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boot.ipxe", s.ServeScript)
	mux.HandleFunc("GET /ipxe/{file}", func(w http.ResponseWriter, r *http.Request) { s.files.ServeFile(w, r, r.PathValue("file")) })
	return mux
}

// ServeScript answers /boot.ipxe?mac=…|uuid=… with the machine's iPXE
// script: 400 for a bad or missing MAC, 404 for an unknown machine under
// Unknown=ignore (discover creates it), 500 if the state has no script;
// what the machine boots is bootFor's.
func (s *Service) ServeScript(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	req := bootRequest{src: trust.Source(r.RemoteAddr)}
	switch {
	case q.Get("mac") != "":
		mac, err := inventory.ParseMAC(q.Get("mac"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req.mac = mac
	case q.Get("uuid") != "":
		req.uuid = strings.ToLower(q.Get("uuid"))
	default:
		http.Error(w, "netboot: need ?mac= or ?uuid=", http.StatusBadRequest)
		return
	}
	m, data, err := s.bootFor(ctx, req)
	var be *bootError
	if errors.As(err, &be) {
		if be.status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		http.Error(w, be.msg, be.status)
		return
	}
	var buf bytes.Buffer
	if err := s.render.Render(&buf, data); err != nil {
		s.log.Error("netboot: render script", "mac", macString(m.MAC), "state", m.State, "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	tmpl, _ := pxe.ScriptFor(data.Target)
	s.event(ctx, m.MAC, m.Name, EventBootScript, map[string]any{"state": m.State, "script": tmpl, "remote": r.RemoteAddr})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(buf.Bytes())
}

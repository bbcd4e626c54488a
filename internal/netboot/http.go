package netboot

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"net/netip"
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
// Unknown=ignore (discover creates it), 500 if the state has no script.
func (s *Service) ServeScript(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	var (
		m   Machine
		mac net.HardwareAddr
		err error
	)
	switch {
	case q.Get("mac") != "":
		if mac, err = inventory.ParseMAC(q.Get("mac")); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		m, err = s.inv.MachineByMAC(ctx, mac)
	case q.Get("uuid") != "":
		m, err = s.inv.MachineByUUID(ctx, strings.ToLower(q.Get("uuid")))
		mac = m.MAC
	default:
		http.Error(w, "netboot: need ?mac= or ?uuid=", http.StatusBadRequest)
		return
	}
	src := trust.Source(r.RemoteAddr)
	if !s.scriptLimit.Allow(src.String()) {
		s.counters.WithLabelValues("refused_rate").Inc()
		w.Header().Set("Retry-After", "1")
		http.Error(w, "netboot: too many boot script requests from "+src.String(), http.StatusTooManyRequests)
		return
	}
	if errors.Is(err, ErrNotFound) && s.cfg.Unknown == UnknownDiscover && mac != nil {
		if ferr := s.fromMachine(ctx, mac, netip.Addr{}, src); ferr != nil {
			s.refuseScript(ctx, w, mac, "", src, ferr)
			return
		}
		m, err = s.inv.DiscoverMachine(ctx, mac, Hints{})
	}
	switch {
	case errors.Is(err, ErrNotFound):
		http.Error(w, "netboot: unknown machine", http.StatusNotFound)
		return
	case err != nil:
		s.log.Error("netboot: script lookup", "mac", macString(mac), "err", err)
		http.Error(w, "netboot: inventory error", http.StatusInternalServerError)
		return
	}
	if m.MAC == nil {
		m.MAC = mac
	}
	if ferr := s.fromMachine(ctx, m.MAC, m.IP, src); ferr != nil {
		s.refuseScript(ctx, w, m.MAC, m.Name, src, ferr)
		return
	}
	token := m.Token
	if token == "" {
		token = "TOKEN"
	}
	// The lifecycle says which boot the state gets; pxe renders it.
	boot, _ := inventory.State(m.State).Boot()
	var buf bytes.Buffer
	if err := s.render.Render(&buf, pxe.ScriptData{Target: pxe.Target(boot), MAC: m.MAC.String(), Name: m.Name, State: m.State, URL: s.cfg.AdvertiseURL, AgentURL: s.cfg.AgentURL, Token: token}); err != nil {
		s.log.Error("netboot: render script", "mac", macString(mac), "state", m.State, "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	tmpl, _ := pxe.ScriptFor(pxe.Target(boot))
	s.event(ctx, m.MAC, m.Name, EventBootScript, map[string]any{"state": m.State, "script": tmpl, "remote": r.RemoteAddr})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(buf.Bytes())
}

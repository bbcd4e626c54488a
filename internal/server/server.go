// Package server assembles metald's one HTTP server: a gin engine to which
// packages contribute routes, request metrics and logging, /healthz and
// /metrics, and a Run(ctx) that shuts down gracefully. The server listens
// on one or more addresses (plain HTTP for machines, HTTPS, a separate API
// listener), each serving the routes of its Role, each with a connection
// cap, and every request gets per-request deadlines (deadlines.go).
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"

	"github.com/metal-iaas/metal/pkg/metalapi"
)

// DefaultMaxConns is the connection cap of each listener.
const DefaultMaxConns = 4096

// Config is the HTTP server's configuration.
type Config struct {
	// Addr is the plain HTTP listen address, e.g. ":8080". It serves every
	// route unless TLS or APIAddr is set; then it serves what machines
	// fetch (RoleMachines), and only the boot files with TLS (RoleBoot).
	Addr string
	// TLS, when set, turns HTTPSAddr (and APIAddr) into HTTPS listeners.
	TLS *tls.Config
	// HTTPSAddr is the HTTPS listen address; required with TLS. It serves
	// what machines fetch, plus the API when APIAddr is empty.
	HTTPSAddr string
	// APIAddr, when set, is a listener of its own for /api/v1, the
	// dashboard, Redfish and /metrics, which then no other listener
	// serves. HTTPS with TLS.
	APIAddr string
	// MaxConns caps each listener's open connections (DefaultMaxConns
	// when zero; negative: no cap).
	MaxConns int
	// ReadTimeout, WriteTimeout and StreamIdle are the per-request
	// deadlines (see withDeadlines); the defaults when zero.
	ReadTimeout, WriteTimeout, StreamIdle time.Duration
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration
}

// withDefaults returns c with its zero fields filled.
func (c Config) withDefaults() Config {
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.StreamIdle == 0 {
		c.StreamIdle = DefaultStreamIdle
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	return c
}

// Validate checks c; it changes nothing and opens nothing (New fills
// the defaults).
func (c Config) Validate() error {
	if c.Addr == "" {
		return errors.New("server: a plain HTTP listen address is required")
	}
	if c.TLS != nil && c.HTTPSAddr == "" {
		return errors.New("server: TLS needs an HTTPS listen address")
	}
	if c.TLS == nil && c.HTTPSAddr != "" {
		return errors.New("server: an HTTPS listen address needs TLS")
	}
	for _, d := range []time.Duration{c.ReadTimeout, c.WriteTimeout, c.StreamIdle, c.ShutdownTimeout} {
		if d < 0 {
			return fmt.Errorf("server: negative timeout %v", d)
		}
	}
	return nil
}

// listener is one address the server answers on.
type listener struct {
	name string // "http", "https" or "api"
	addr string
	role Role
	tls  bool
	ln   net.Listener
}

// Server is metald's HTTP server.
type Server struct {
	cfg         Config
	log         *slog.Logger
	engine      *gin.Engine
	registry    *prometheus.Registry
	reqs        *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	misdirected *prometheus.CounterVec
	listeners   []*listener
	mounts      []mount
}

// New builds the server and its registry. Routes are added with Router
// before Run. cfg must be valid (Validate); New validates it again and
// panics on an invalid one, a programming error.
func New(cfg Config, log *slog.Logger) *Server {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	gin.SetMode(gin.ReleaseMode)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{
		cfg: cfg, log: log, engine: gin.New(), registry: reg,
		reqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metald_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "metald_http_request_duration_seconds", Help: "HTTP request latency by route and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route", "method"}),
		misdirected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metald_http_misdirected_total", Help: "Requests refused with 421 because their listener does not serve the path.",
		}, []string{"listener"}),
	}
	s.listeners = s.plan()
	reg.MustRegister(s.reqs, s.latency, s.misdirected)
	// Never believe X-Forwarded-For or X-Real-IP: ClientIP is the peer.
	if err := s.engine.SetTrustedProxies(nil); err != nil {
		panic(err)
	}
	s.engine.Use(s.recoverer, s.observe)
	s.engine.HandleMethodNotAllowed = true
	s.engine.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	s.engine.GET("/metrics", gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	s.engine.NoRoute(func(c *gin.Context) {
		c.JSON(http.StatusNotFound, gin.H{"error": "no such path: " + c.Request.URL.Path, "code": metalapi.CodeNotFound})
	})
	return s
}

// Router is where packages contribute routes.
func (s *Server) Router() gin.IRouter { return s.engine }

// Handler is the whole server as an http.Handler (for tests).
func (s *Server) Handler() http.Handler { return s }

// Registry is the Prometheus registry behind /metrics.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// plan lists the listeners the configuration asks for.
func (s *Server) plan() []*listener {
	c := s.cfg
	split := c.APIAddr != ""
	switch {
	case c.TLS == nil && !split:
		return []*listener{{name: "http", addr: c.Addr, role: RoleAll}}
	case c.TLS == nil:
		return []*listener{{name: "http", addr: c.Addr, role: RoleMachines}, {name: "api", addr: c.APIAddr, role: RoleAPI}}
	case !split:
		return []*listener{{name: "http", addr: c.Addr, role: RoleBoot}, {name: "https", addr: c.HTTPSAddr, role: RoleAll, tls: true}}
	default:
		return []*listener{{name: "http", addr: c.Addr, role: RoleBoot},
			{name: "https", addr: c.HTTPSAddr, role: RoleMachines, tls: true}, {name: "api", addr: c.APIAddr, role: RoleAPI, tls: true}}
	}
}

// Listen opens the listeners, so that configuration errors such as a port
// in use surface before any service starts.
func (s *Server) Listen() error {
	for i, l := range s.listeners {
		if l.ln != nil {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			for _, o := range s.listeners[:i] {
				o.ln.Close()
				o.ln = nil
			}
			return fmt.Errorf("%s listen on %s: %w", l.name, l.addr, err)
		}
		if s.cfg.MaxConns > 0 {
			ln = netutil.LimitListener(ln, s.cfg.MaxConns)
		}
		l.ln = ln
	}
	return nil
}

// Addr is the plain HTTP listener's bound address once Listen succeeded.
func (s *Server) Addr() net.Addr { return s.AddrOf("http") }

// AddrOf is the bound address of the listener named "http", "https" or
// "api", nil if there is none or Listen has not succeeded.
func (s *Server) AddrOf(name string) net.Addr {
	for _, l := range s.listeners {
		if l.name == name && l.ln != nil {
			return l.ln.Addr()
		}
	}
	return nil
}

// Run serves until ctx ends, then drains in-flight requests.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	servers := make([]*http.Server, len(s.listeners))
	errc := make(chan error, len(s.listeners))
	for i, l := range s.listeners {
		srv := &http.Server{
			Handler:           s.forRole(l.role, l.name),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			BaseContext:       func(net.Listener) context.Context { return ctx },
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		}
		ln := l.ln
		if l.tls {
			srv.TLSConfig = s.cfg.TLS.Clone()
			srv.TLSConfig.NextProtos = []string{"http/1.1"}
			ln = tls.NewListener(ln, srv.TLSConfig)
		}
		servers[i] = srv
		s.log.Info("http listening", "listener", l.name, "addr", l.ln.Addr().String(), "tls", l.tls, "serves", string(l.role))
		go func() {
			err := srv.Serve(ln)
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				err = fmt.Errorf("%s: %w", l.name, err)
			}
			errc <- err
		}()
	}
	var first error
	received := 0
	select {
	case first = <-errc:
		received++
		if first == nil {
			first = errors.New("http: a listener stopped serving")
		}
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
			if first == nil {
				first = fmt.Errorf("http shutdown: %w", err)
			}
		}
	}
	for ; received < len(servers); received++ {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) && first == nil {
			first = fmt.Errorf("http: %w", err)
		}
	}
	for _, l := range s.listeners {
		l.ln = nil
	}
	return first
}

// observe counts and times requests by route template (never raw paths,
// which would explode label cardinality).
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	s.reqs.WithLabelValues(route, c.Request.Method, strconv.Itoa(c.Writer.Status())).Inc()
	s.latency.WithLabelValues(route, c.Request.Method).Observe(time.Since(start).Seconds())
	if c.Writer.Status() >= 500 {
		s.log.Warn("http request", "method", c.Request.Method, "path", c.Request.URL.Path, "status", c.Writer.Status(),
			"duration", time.Since(start))
	} else {
		s.log.Debug("http request", "method", c.Request.Method, "path", c.Request.URL.Path, "status", c.Writer.Status(),
			"duration", time.Since(start), "remote", c.ClientIP())
	}
}

// recoverer turns a handler panic into a 500 and a log line.
func (s *Server) recoverer(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.log.Error("handler panic", "method", c.Request.Method, "path", c.Request.URL.Path, "panic", r)
			c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"error": "internal error", "code": metalapi.CodeInternal})
		}
	}()
	c.Next()
}

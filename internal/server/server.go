// Package server assembles metald's one HTTP server: a gin engine to which
// packages contribute routes, request metrics and logging, /healthz and
// /metrics, and a Run(ctx) that shuts down gracefully.
package server

import (
	"context"
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
)

// Config is the HTTP server's configuration.
type Config struct {
	// Addr is the listen address, e.g. ":8080".
	Addr string
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration
}

// Server is metald's HTTP server.
type Server struct {
	cfg      Config
	log      *slog.Logger
	engine   *gin.Engine
	registry *prometheus.Registry
	reqs     *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	ln       net.Listener
	mounts   []mount
}

// New builds the server and its registry. Routes are added with Router
// before Run.
func New(cfg Config, log *slog.Logger) *Server {
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 10 * time.Second
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
	}
	reg.MustRegister(s.reqs, s.latency)
	s.engine.Use(s.recoverer, s.observe)
	s.engine.HandleMethodNotAllowed = true
	s.engine.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	s.engine.GET("/metrics", gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	s.engine.NoRoute(func(c *gin.Context) {
		c.JSON(http.StatusNotFound, gin.H{"error": "no such path: " + c.Request.URL.Path, "code": "not_found"})
	})
	return s
}

// Router is where packages contribute routes.
func (s *Server) Router() gin.IRouter { return s.engine }

// Handler is the whole server as an http.Handler (for tests).
func (s *Server) Handler() http.Handler { return s }

// Registry is the Prometheus registry behind /metrics.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Listen opens the listener, so that configuration errors such as a port
// in use surface before any service starts.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("http listen on %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	return nil
}

// Addr is the bound address once Listen succeeded.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Run serves until ctx ends, then drains in-flight requests.
func (s *Server) Run(ctx context.Context) error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	s.log.Info("http listening", "addr", s.ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("http shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http: %w", err)
	}
	return nil
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
			c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"error": "internal error", "code": "internal"})
		}
	}()
	c.Next()
}

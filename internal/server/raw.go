package server

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Mount serves every path under prefix with a plain net/http handler in
// front of gin. It exists for bulk data (images, kernels): gin's response
// writer hides io.ReaderFrom, so http.ServeContent through it can never use
// sendfile(2); a handler mounted here gets the server's own writer, wrapped
// only to count and time the request.
func (s *Server) Mount(prefix string, h http.Handler) {
	s.mounts = append(s.mounts, mount{prefix: prefix, h: h})
}

type mount struct {
	prefix string
	h      http.Handler
}

// ServeHTTP sets the request's deadlines and dispatches to a mounted
// handler or to gin. Every answer says nosniff: no browser may guess a
// script out of an image, a boot file or a JSON error.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.withDeadlines(w, r, http.HandlerFunc(s.dispatch))
}

func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	for _, m := range s.mounts {
		if strings.HasPrefix(r.URL.Path, m.prefix) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			m.h.ServeHTTP(sw, r)
			route := m.prefix + "*"
			s.reqs.WithLabelValues(route, r.Method, strconv.Itoa(sw.status)).Inc()
			s.latency.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
			return
		}
	}
	s.engine.ServeHTTP(w, r)
}

// statusWriter records the status code and keeps io.ReaderFrom (sendfile)
// and http.Flusher reachable.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	w.wrote = true
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(w.ResponseWriter, r)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

package server

import (
	"io"
	"net/http"
	"strings"
	"time"
)

// Defaults of the per-request deadlines.
const (
	// DefaultReadTimeout bounds how long the body of an ordinary request
	// may take to arrive.
	DefaultReadTimeout = 30 * time.Second
	// DefaultWriteTimeout bounds how long an ordinary request may take to
	// be answered, counted from the moment its handler starts.
	DefaultWriteTimeout = 5 * time.Minute
	// DefaultStreamIdle bounds how long a streaming upload may stall.
	DefaultStreamIdle = 2 * time.Minute
)

// streaming is the one list of routes that move bulk data or wait on
// purpose, and so get no total read or write deadline: image uploads
// (their bodies may take hours, they only may not stall), image and agent
// downloads, and the event long poll and NDJSON follow. Every other
// request gets ReadTimeout for its body and WriteTimeout for its answer.
var streaming = []struct {
	method, prefix string
	upload         bool
}{
	{http.MethodPut, "/api/v1/images/", true},
	{http.MethodPost, "/api/v1/images", true},
	{"", "/images/", false},
	{"", "/agent/vmlinuz", false},
	{"", "/agent/initrd", false},
	{http.MethodGet, "/api/v1/events", false},
}

// streamingRoute says whether r is on the streaming list, and whether it
// is an upload.
func streamingRoute(r *http.Request) (stream, upload bool) {
	for _, s := range streaming {
		if (s.method == "" || s.method == r.Method) && strings.HasPrefix(r.URL.Path, s.prefix) {
			return true, s.upload
		}
	}
	return false, false
}

// withDeadlines sets the connection's per-request deadlines through
// http.ResponseController (the server has no global ReadTimeout or
// WriteTimeout, which would cut long downloads and long polls):
//
//   - ordinary routes: the body must arrive within ReadTimeout, the answer
//     must be written within WriteTimeout;
//   - streaming uploads: the body may not stall for StreamIdle;
//   - other streaming routes: no deadline.
//
// The read deadline is lifted as soon as the body is consumed: once the
// body is read, net/http reads the connection in the background to notice
// a client that goes away, and a deadline firing there would cancel the
// request's context in the middle of a slow BMC call.
func (s *Server) withDeadlines(w http.ResponseWriter, r *http.Request, next http.Handler) {
	rc := http.NewResponseController(w)
	stream, upload := streamingRoute(r)
	if !stream {
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	}
	hasBody := r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	switch {
	case !hasBody:
	case upload:
		r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, idle: s.cfg.StreamIdle}
		_ = rc.SetReadDeadline(time.Now().Add(s.cfg.StreamIdle))
	case !stream:
		r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
		_ = rc.SetReadDeadline(time.Now().Add(s.cfg.ReadTimeout))
	}
	next.ServeHTTP(w, r)
}

// deadlineBody lifts the read deadline when the body ends; with idle set,
// every read that returns data pushes the deadline idle further.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err != nil:
		b.lift()
	case n > 0 && b.idle > 0:
		_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
	return n, err
}

func (b *deadlineBody) Close() error {
	b.lift()
	return b.ReadCloser.Close()
}

func (b *deadlineBody) lift() {
	if !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
}

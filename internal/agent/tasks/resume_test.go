package tasks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func payload(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(7, 9))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// dropServer serves data with Range support, but cuts every response
// after `chunk` bytes of body (hijacking and closing the connection).
func dropServer(t *testing.T, data []byte, chunk int, etag func() string) (*httptest.Server, *atomic.Int32) {
	var reqs atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		if etag != nil {
			w.Header().Set("ETag", etag())
		}
		start := 0
		if rg := r.Header.Get("Range"); rg != "" {
			if _, err := fmt.Sscanf(rg, "bytes=%d-", &start); err != nil || start >= len(data) {
				http.Error(w, "bad range", http.StatusRequestedRangeNotSatisfiable)
				return
			}
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(data)-1, len(data)))
			w.Header().Set("Content-Length", fmt.Sprint(len(data)-start))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			w.WriteHeader(http.StatusOK)
		}
		end := min(start+chunk, len(data))
		_, _ = w.Write(data[start:end])
		if end < len(data) {
			w.(http.Flusher).Flush()
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &reqs
}

func fastOpts() ResumeOptions {
	return ResumeOptions{Backoff: time.Millisecond, MaxRetries: 3, IdleTimeout: 5 * time.Second}
}

func TestResumingReaderReassembles(t *testing.T) {
	data := payload(1<<20 + 12345)
	srv, reqs := dropServer(t, data, 100_000, nil)
	r, err := OpenURL(context.Background(), srv.URL, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("reassembled %d bytes differ from the %d served", len(got), len(data))
	}
	wantReqs := (len(data) + 99_999) / 100_000
	if int(reqs.Load()) != wantReqs || r.Reconnects != wantReqs-1 {
		t.Errorf("%d requests, %d reconnects; want %d requests", reqs.Load(), r.Reconnects, wantReqs)
	}
}

// A server that ignores Range (answers 200 again) is skipped forward.
func TestResumingReaderRangeIgnored(t *testing.T) {
	data := payload(300_000)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		if n.Add(1) == 1 {
			_, _ = w.Write(data[:123_457])
			w.(http.Flusher).Flush()
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
			return
		}
		_, _ = w.Write(data)
	}))
	defer srv.Close()
	r, err := OpenURL(context.Background(), srv.URL, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, err %v", len(got), err)
	}
}

func TestResumingReaderChanged(t *testing.T) {
	data := payload(300_000)
	var v atomic.Int32
	srv, _ := dropServer(t, data, 100_000, func() string { return fmt.Sprintf(`"v%d"`, v.Add(1)) })
	r, err := OpenURL(context.Background(), srv.URL, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(r)
	if !errors.Is(err, ErrChanged) {
		t.Fatalf("err = %v, want ErrChanged", err)
	}
}

func TestResumingReaderGivesUp(t *testing.T) {
	data := payload(200_000)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			_, _ = w.Write(data[:50_000])
			w.(http.Flusher).Flush()
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
			return
		}
		http.Error(w, "backend gone", http.StatusBadGateway)
	}))
	defer srv.Close()
	r, err := OpenURL(context.Background(), srv.URL, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err == nil || !strings.Contains(err.Error(), "attempts without progress at offset 50000") || !strings.Contains(err.Error(), "502") {
		t.Fatalf("err = %v after %d bytes", err, len(got))
	}
	if int(n.Load()) != 1+3 { // first request + MaxRetries reconnects (the drop counts as the first failure)
		t.Errorf("%d requests", n.Load())
	}
}

// A connection that stalls is cut by the idle timeout and resumed.
func TestResumingReaderStall(t *testing.T) {
	data := payload(200_000)
	var n atomic.Int32
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			_, _ = w.Write(data[:70_000])
			w.(http.Flusher).Flush()
			select { // stall
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		http.ServeContent(w, r, "x", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()
	o := fastOpts()
	o.IdleTimeout = 200 * time.Millisecond
	r, err := OpenURL(context.Background(), srv.URL, o)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) || r.Reconnects != 1 {
		t.Fatalf("got %d bytes, %d reconnects, err %v", len(got), r.Reconnects, err)
	}
}

func TestOpenURLErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	if _, err := OpenURL(context.Background(), srv.URL+"/nope", fastOpts()); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("err = %v, want 404", err)
	}
	for in, ok := range map[string]bool{"bytes 10-99/100": true, "bytes 10-99/*": true, "bytes x-1/2": false, "10-99/100": false,
		"bytes 0-/-2": false, "bytes 10-9/100": false, "bytes 0-99/99": false, "bytes +1-2/3": false} {
		if _, _, got := parseContentRange(in); got != ok {
			t.Errorf("parseContentRange(%q) ok = %v", in, got)
		}
	}
}

// TestOpenURLRetriesFirstRequest: metald restarting when the task starts
// (connection refused, then 503) must not fail the download.
func TestOpenURLRetriesFirstRequest(t *testing.T) {
	data := payload(4096)
	var reqs atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reqs.Add(1) == 1 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(data)
	})}
	go func() {
		time.Sleep(30 * time.Millisecond)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return
		}
		_ = srv.Serve(ln)
	}()
	defer srv.Close()
	o := fastOpts()
	o.Backoff, o.MaxRetries = 10*time.Millisecond, 8
	r, err := OpenURL(context.Background(), "http://"+addr+"/img", o)
	if err != nil {
		t.Fatalf("OpenURL while the server starts: %v", err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) || reqs.Load() < 2 {
		t.Fatalf("read %d bytes, err %v, %d requests; want the payload after a 503", len(got), err, reqs.Load())
	}
	// Gives up after MaxRetries when nothing ever listens.
	o.MaxRetries = 2
	if _, err := OpenURL(context.Background(), "http://127.0.0.1:1/img", o); err == nil || !strings.Contains(err.Error(), "attempts without progress") {
		t.Errorf("err = %v, want giving up after retries", err)
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-99/100", "bytes 10-99/*", "bytes -1-2/3", "bytes 9223372036854775807-1/2", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, total, ok := parseContentRange(s)
		if ok && (start < 0 || total < -1 || (total >= 0 && start >= total)) {
			t.Fatalf("parseContentRange(%q) = %d, %d", s, start, total)
		}
	})
}

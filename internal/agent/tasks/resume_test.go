package tasks

import (
	"bufio"
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

// eagerEOF is a response body that behaves like a fast network in front
// of a slower disk: the data is already buffered, so every Read fills p,
// and the Read that delivers the last bytes also returns io.EOF (as
// net/http's own body does when it reaches the Content-Length).
type eagerEOF struct {
	br *bufio.Reader
	io.Closer
}

func (b *eagerEOF) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := b.br.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	if _, err := b.br.Peek(1); err == io.EOF {
		return n, io.EOF
	}
	return n, nil
}

// eagerEOFTransport wraps every response body in an eagerEOF.
type eagerEOFTransport struct{ http.RoundTripper }

func (t eagerEOFTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt := t.RoundTripper
	if rt == nil {
		rt = http.DefaultTransport
	}
	resp, err := rt.RoundTrip(req)
	if err == nil {
		resp.Body = &eagerEOF{br: bufio.NewReaderSize(resp.Body, 64<<10), Closer: resp.Body}
	}
	return resp, err
}

// contentServer serves data with http.ServeContent (Range support, 416
// for "bytes=<len>-") and counts the requests, and those with a Range.
func contentServer(t *testing.T, data []byte) (srv *httptest.Server, reqs, ranged *atomic.Int32) {
	reqs, ranged = new(atomic.Int32), new(atomic.Int32)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		if r.Header.Get("Range") != "" {
			ranged.Add(1)
		}
		http.ServeContent(w, r, "img", time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(srv.Close)
	return srv, reqs, ranged
}

// assertEOFAfterEnd reads r a few more times after it has delivered
// everything: each Read must return (0, io.EOF) at once.
func assertEOFAfterEnd(t *testing.T, r *ResumingReader) {
	t.Helper()
	buf := make([]byte, 4<<20)
	for i := range 3 {
		start := time.Now()
		if n, err := r.Read(buf); n != 0 || err != io.EOF {
			t.Fatalf("read %d after the end: %d bytes, err %v; want 0, io.EOF", i+1, n, err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("read %d after the end took %v", i+1, d)
		}
	}
}

// TestResumingReaderLastChunkWithEOF: the image's last bytes arrive with
// io.EOF in the same Read, and the consumer reads 4 MiB chunks with
// io.ReadFull (as imaging's raw stream does), which drops that io.EOF when
// the chunk is full and reads again. For a size that is a multiple of the
// chunk the reader used to reconnect with "Range: bytes=<size>-", get 416
// and retry until it gave up.
func TestResumingReaderLastChunkWithEOF(t *testing.T) {
	const chunk = 4 << 20
	for _, size := range []int{2 * chunk, 2*chunk + 12345, chunk, chunk - 1, 1} {
		for _, eager := range []bool{true, false} {
			t.Run(fmt.Sprintf("%d/eager=%v", size, eager), func(t *testing.T) {
				data := payload(size)
				srv, reqs, _ := contentServer(t, data)
				o := fastOpts()
				if eager {
					o.Client = &http.Client{Transport: eagerEOFTransport{}}
				}
				r, err := OpenURL(context.Background(), srv.URL, o)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				var got []byte
				buf := make([]byte, chunk)
				for {
					n, err := io.ReadFull(r, buf)
					got = append(got, buf[:n]...)
					if err == io.EOF || err == io.ErrUnexpectedEOF {
						break
					}
					if err != nil {
						t.Fatalf("after %d bytes: %v (%d requests)", len(got), err, reqs.Load())
					}
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("read %d bytes, differ from the %d served", len(got), len(data))
				}
				assertEOFAfterEnd(t, r)
				if reqs.Load() != 1 || r.Reconnects != 0 || r.Offset() != int64(size) || r.Size() != int64(size) {
					t.Errorf("%d requests, %d reconnects, offset %d, size %d; want 1 request", reqs.Load(), r.Reconnects, r.Offset(), r.Size())
				}
			})
		}
	}
}

// After io.ReadAll (which saw io.EOF) further Reads return io.EOF without
// a request, also when the size was unknown (chunked answer) or learnt
// only from a resumed answer's Content-Range.
func TestResumingReaderReadAfterEOF(t *testing.T) {
	data := payload(300_000)
	t.Run("content-length", func(t *testing.T) {
		srv, reqs, _ := contentServer(t, data)
		r, err := OpenURL(context.Background(), srv.URL, fastOpts())
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("got %d bytes, err %v", len(got), err)
		}
		assertEOFAfterEnd(t, r)
		if reqs.Load() != 1 {
			t.Errorf("%d requests, want 1", reqs.Load())
		}
	})
	t.Run("chunked", func(t *testing.T) {
		var reqs atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reqs.Add(1)
			w.(http.Flusher).Flush() // no Content-Length: chunked
			_, _ = w.Write(data)
		}))
		defer srv.Close()
		r, err := OpenURL(context.Background(), srv.URL, fastOpts())
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, data) || r.Size() != -1 {
			t.Fatalf("got %d bytes, size %d, err %v", len(got), r.Size(), err)
		}
		assertEOFAfterEnd(t, r)
		if reqs.Load() != 1 {
			t.Errorf("%d requests, want 1", reqs.Load())
		}
	})
	t.Run("size from content-range", func(t *testing.T) {
		var reqs atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if reqs.Add(1) == 1 { // chunked, cut in the middle
				w.(http.Flusher).Flush()
				_, _ = w.Write(data[:100_000])
				w.(http.Flusher).Flush()
				if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
					c.Close()
				}
				return
			}
			http.ServeContent(w, r, "img", time.Time{}, bytes.NewReader(data))
		}))
		defer srv.Close()
		r, err := OpenURL(context.Background(), srv.URL, fastOpts())
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, data) || r.Size() != int64(len(data)) {
			t.Fatalf("got %d bytes, size %d, err %v", len(got), r.Size(), err)
		}
		assertEOFAfterEnd(t, r)
		if reqs.Load() != 2 || r.Reconnects != 1 {
			t.Errorf("%d requests, %d reconnects; want 2, 1", reqs.Load(), r.Reconnects)
		}
	})
}

// A connection dropped right after the last byte, before the reader saw
// the end (chunked: no length known), is resumed with "bytes=<len>-"; the
// server's 416 for it means the end, not a failure to retry. A 416 that
// contradicts what was read means the image changed.
func TestResumingReader416AtEnd(t *testing.T) {
	data := payload(200_000)
	cases := []struct {
		name         string
		contentRange string // of the 416
		etag         string // of the 416 (the first answer has "v1")
		wantErr      error
	}{
		{"with total", fmt.Sprintf("bytes */%d", len(data)), `"v1"`, nil},
		{"without content-range", "", `"v1"`, nil},
		{"other total", fmt.Sprintf("bytes */%d", len(data)+5), `"v1"`, ErrChanged},
		{"other etag", fmt.Sprintf("bytes */%d", len(data)), `"v2"`, ErrChanged},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var reqs, ranged atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reqs.Add(1)
				if rg := r.Header.Get("Range"); rg != "" {
					ranged.Add(1)
					if rg != fmt.Sprintf("bytes=%d-", len(data)) {
						t.Errorf("Range %q", rg)
					}
					w.Header().Set("ETag", c.etag)
					if c.contentRange != "" {
						w.Header().Set("Content-Range", c.contentRange)
					}
					http.Error(w, "range not satisfiable", http.StatusRequestedRangeNotSatisfiable)
					return
				}
				w.Header().Set("ETag", `"v1"`)
				w.(http.Flusher).Flush() // chunked
				_, _ = w.Write(data)
				w.(http.Flusher).Flush()
				if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
					c.Close() // no final chunk: the client sees a drop
				}
			}))
			defer srv.Close()
			r, err := OpenURL(context.Background(), srv.URL, fastOpts())
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got, err := io.ReadAll(r)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) || ranged.Load() != 1 {
					t.Fatalf("err = %v after %d ranged requests, want %v at once", err, ranged.Load(), c.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("got %d bytes, err %v (%d requests)", len(got), err, reqs.Load())
			}
			assertEOFAfterEnd(t, r)
			if reqs.Load() != 2 || ranged.Load() != 1 || r.Size() != int64(len(data)) {
				t.Errorf("%d requests (%d ranged), size %d; want 2 (1)", reqs.Load(), ranged.Load(), r.Size())
			}
		})
	}
	for in, want := range map[string]int64{"bytes */100": 100, "bytes */0": 0, "bytes */*": -1, "bytes 0-1/2": -1, "*/5": -1, "bytes */-1": -1} {
		if got, ok := parseUnsatisfiedRange(in); (ok && got != want) || ok != (want >= 0) {
			t.Errorf("parseUnsatisfiedRange(%q) = %d, %v", in, got, ok)
		}
	}
}

// Real drops still resume when they fall on the 4 MiB chunk boundaries of
// an aligned image and the last bytes come with io.EOF.
func TestResumingReaderDropsAtChunkBoundaries(t *testing.T) {
	data := payload(12 << 20)
	srv, reqs := dropServer(t, data, 4<<20, nil)
	o := fastOpts()
	o.Client = &http.Client{Transport: eagerEOFTransport{}}
	r, err := OpenURL(context.Background(), srv.URL, o)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 4<<20)
	for {
		n, err := io.ReadFull(r, buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, differ from the %d served", len(got), len(data))
	}
	assertEOFAfterEnd(t, r)
	if reqs.Load() != 3 || r.Reconnects != 2 {
		t.Errorf("%d requests, %d reconnects; want 3, 2", reqs.Load(), r.Reconnects)
	}
}

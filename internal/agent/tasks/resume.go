package tasks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrChanged means the resource changed between two range requests.
var ErrChanged = errors.New("image changed during download")

// errTransient marks a failed request worth repeating: a transport error
// (metald restarting: connection refused) or a 5xx answer.
var errTransient = errors.New("transient")

// errAtEnd means the server answered 416 to "Range: bytes=N-" because the
// resource ends at N: everything has been delivered.
var errAtEnd = errors.New("range starts at the end of the resource")

// ResumeOptions tune a ResumingReader.
type ResumeOptions struct {
	Client *http.Client
	// MaxRetries bounds consecutive reconnects that deliver no byte
	// (10 when zero).
	MaxRetries int
	// Backoff is the first delay between reconnects, doubled up to 30 s
	// (500 ms when zero).
	Backoff time.Duration
	// IdleTimeout aborts a connection that delivers nothing for this long
	// (30 s when zero), which then counts as dropped.
	IdleTimeout time.Duration
	Log         *slog.Logger
}

// withDefaults fills the zero fields.
func (o ResumeOptions) withDefaults() ResumeOptions {
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = 10
	}
	if o.Backoff <= 0 {
		o.Backoff = 500 * time.Millisecond
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// ResumingReader is one continuous io.Reader over an HTTP resource that
// transparently reconnects after a dropped connection with
// "Range: bytes=N-" and carries on where it stopped.
//
// When the length is known (Content-Length, or the total of a
// Content-Range) it delivers exactly that many bytes and then io.EOF,
// however the last bytes arrived (with io.EOF in the same Read, or
// followed by a transport error) and however often it is read again:
// nothing past the end is ever requested. io.EOF is sticky.
type ResumingReader struct {
	ctx  context.Context
	url  string
	o    ResumeOptions
	off  int64
	size int64 // -1 unknown
	etag string
	lmod string
	eof  bool // the whole resource was delivered

	body    io.ReadCloser
	cancel  context.CancelFunc
	idle    *time.Timer
	fails   int
	backoff time.Duration
	// Reconnects counts successful reconnections, for tests and logs.
	Reconnects int
}

// OpenURL starts the download; the first request must succeed with 200.
func OpenURL(ctx context.Context, url string, o ResumeOptions) (*ResumingReader, error) {
	o = o.withDefaults()
	r := &ResumingReader{ctx: ctx, url: url, o: o, size: -1, backoff: o.Backoff}
	// metald may be restarting when the task starts: repeat transport
	// errors and 5xx answers like a dropped connection (MaxRetries, with
	// backoff); other answers (404, ...) fail at once.
	for {
		err := r.connect()
		if err == nil {
			r.fails, r.backoff = 0, o.Backoff
			return r, nil
		}
		if !errors.Is(err, errTransient) || ctx.Err() != nil {
			return nil, err
		}
		o.Log.Warn("image request failed, retrying", "err", err)
		if ferr := r.failed(err); ferr != nil {
			return nil, ferr
		}
	}
}

// Size is the resource's length, -1 when the server did not say.
func (r *ResumingReader) Size() int64 { return r.size }

// Offset is the number of bytes delivered so far.
func (r *ResumingReader) Offset() int64 { return r.off }

func (r *ResumingReader) connect() error {
	ctx, cancel := context.WithCancel(r.ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		cancel()
		return fmt.Errorf("image url %q: %w", r.url, err)
	}
	// Offsets must count the resource's bytes: no transparent gzip.
	req.Header.Set("Accept-Encoding", "identity")
	if r.off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", r.off))
	}
	resp, err := r.o.Client.Do(req)
	if err != nil {
		cancel()
		return fmt.Errorf("get image: %w (%w)", err, errTransient)
	}
	fail := func(format string, a ...any) error {
		resp.Body.Close()
		cancel()
		return fmt.Errorf(format, a...)
	}
	etag, lmod := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	switch {
	case r.off == 0 && resp.StatusCode == http.StatusOK:
		r.size = resp.ContentLength
		r.etag, r.lmod = etag, lmod
	case r.off > 0 && resp.StatusCode == http.StatusPartialContent:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != r.off {
			return fail("get image: asked for bytes=%d-, got Content-Range %q", r.off, resp.Header.Get("Content-Range"))
		}
		if r.changed(etag, lmod) || (total >= 0 && r.size >= 0 && total != r.size) {
			return fail("get image: %w (etag %q→%q, size %d→%d)", ErrChanged, r.etag, etag, r.size, total)
		}
		if r.size < 0 {
			r.size = total
		}
	case r.off > 0 && resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		// "bytes=N-" is unsatisfiable when the resource has at most N
		// bytes; N have been read, so it has exactly N: the end (the
		// reader never asks past a known size, so a known size larger
		// than N means the resource shrank).
		cr := resp.Header.Get("Content-Range")
		total, ok := parseUnsatisfiedRange(cr)
		if r.changed(etag, lmod) || (ok && total != r.off) || (!ok && r.size >= 0 && r.size != r.off) {
			return fail("get image: %w (bytes=%d- unsatisfiable, Content-Range %q, etag %q→%q, size %d)", ErrChanged, r.off, cr, r.etag, etag, r.size)
		}
		r.size = r.off
		return fail("get image: %w", errAtEnd)
	case r.off > 0 && resp.StatusCode == http.StatusOK:
		// The server ignores Range: read again from the start and skip.
		if (r.etag != "" && etag != r.etag) || (resp.ContentLength >= 0 && r.size >= 0 && resp.ContentLength != r.size) {
			return fail("get image: %w (etag %q→%q, size %d→%d)", ErrChanged, r.etag, etag, r.size, resp.ContentLength)
		}
		r.o.Log.Warn("image server ignores Range, skipping from the start", "offset", r.off)
		if _, err := io.CopyN(io.Discard, resp.Body, r.off); err != nil {
			return fail("get image: skipping %d bytes: %w", r.off, err)
		}
	default:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if resp.StatusCode >= 500 {
			return fail("get image %s: %s: %s (%w)", r.url, resp.Status, strings.TrimSpace(string(b)), errTransient)
		}
		return fail("get image %s: %s: %s", r.url, resp.Status, strings.TrimSpace(string(b)))
	}
	r.body, r.cancel = resp.Body, cancel
	r.idle = time.AfterFunc(r.o.IdleTimeout, cancel)
	return nil
}

// changed reports whether a later answer's validators differ from the
// first answer's.
func (r *ResumingReader) changed(etag, lmod string) bool {
	return (r.etag != "" && etag != r.etag) || (r.etag == "" && r.lmod != "" && lmod != r.lmod)
}

// parseUnsatisfiedRange parses the Content-Range of a 416 answer,
// "bytes */TOTAL".
func parseUnsatisfiedRange(s string) (total int64, ok bool) {
	tot, found := strings.CutPrefix(s, "bytes */")
	if !found {
		return 0, false
	}
	t, err := strconv.ParseUint(tot, 10, 63)
	if err != nil {
		return 0, false
	}
	return int64(t), true
}

// parseContentRange parses "bytes START-END/TOTAL" (TOTAL may be "*"):
// START ≤ END, and END < TOTAL when TOTAL is given.
func parseContentRange(s string) (start, total int64, ok bool) {
	s, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(s, "/")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	st, err1 := strconv.ParseUint(a, 10, 63)
	end, err2 := strconv.ParseUint(b, 10, 63)
	if err1 != nil || err2 != nil || end < st {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		t, err := strconv.ParseUint(tot, 10, 63)
		if err != nil || t <= end {
			return 0, 0, false
		}
		total = int64(t)
	}
	return int64(st), total, true
}

func (r *ResumingReader) drop() {
	if r.body != nil {
		r.idle.Stop()
		r.body.Close()
		r.cancel()
		r.body = nil
	}
}

// atEnd marks the resource as delivered and releases the connection.
func (r *ResumingReader) atEnd() {
	r.eof = true
	r.drop()
}

// Read implements io.Reader.
func (r *ResumingReader) Read(p []byte) (int, error) {
	for {
		if r.eof {
			return 0, io.EOF
		}
		if r.size >= 0 && r.off >= r.size {
			// Everything arrived, though not (yet) with io.EOF from
			// this connection: never ask for "bytes=<size>-".
			r.atEnd()
			return 0, io.EOF
		}
		if err := r.ctx.Err(); err != nil {
			r.drop()
			return 0, err
		}
		if r.body == nil {
			if err := r.connect(); err != nil {
				if errors.Is(err, errAtEnd) {
					r.o.Log.Info("image server says the resumed range is past the end: complete", "offset", r.off)
					r.atEnd()
					return 0, io.EOF
				}
				if errors.Is(err, ErrChanged) || r.ctx.Err() != nil {
					return 0, err
				}
				if err := r.failed(err); err != nil {
					return 0, err
				}
				continue
			}
			r.Reconnects++
		}
		if r.size >= 0 && int64(len(p)) > r.size-r.off {
			p = p[:r.size-r.off] // never more than the announced length
		}
		n, err := r.body.Read(p)
		if n > 0 {
			r.off += int64(n)
			r.fails, r.backoff = 0, r.o.Backoff
			r.idle.Reset(r.o.IdleTimeout)
		}
		switch {
		case err == nil:
			return n, nil
		case r.size >= 0 && r.off >= r.size, err == io.EOF && r.size < 0:
			// Complete, whether the last bytes came with io.EOF, before
			// it, or before a transport error.
			r.atEnd()
			return n, io.EOF
		}
		// Dropped: a transport error, a premature EOF, or the idle timer.
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		r.o.Log.Warn("image connection dropped, resuming", "offset", r.off, "size", r.size, "err", err)
		r.drop()
		if n > 0 {
			return n, nil
		}
		if err := r.failed(err); err != nil {
			return 0, err
		}
	}
}

// failed counts a reconnect without progress and waits before the next.
func (r *ResumingReader) failed(err error) error {
	r.fails++
	if r.fails > r.o.MaxRetries {
		return fmt.Errorf("get image: %d attempts without progress at offset %d: %w", r.fails, r.off, err)
	}
	select {
	case <-r.ctx.Done():
		return r.ctx.Err()
	case <-time.After(r.backoff):
	}
	r.backoff = min(r.backoff*2, 30*time.Second)
	return nil
}

// Close releases the connection.
func (r *ResumingReader) Close() error {
	r.drop()
	return nil
}

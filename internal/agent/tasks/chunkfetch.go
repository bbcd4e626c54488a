package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

// errRefused marks data that is not what it should be: a body too long,
// or a chunk that is not zstd, of the wrong length or with the wrong
// SHA-256. A refused chunk is fetched again.
var errRefused = errors.New("refused")

// errBusy marks a 503 answer: a server (a peer) serving all it may.
var errBusy = errors.New("busy")

// fetcher GETs the manifest and the chunks: transport errors, dropped
// bodies and 5xx answers are repeated with backoff (ResumeOptions, like
// the streaming download: MaxRetries consecutive failures per request);
// a chunk that arrives corrupt is refused and fetched again up to
// badRetries times; any other answer fails at once.
type fetcher struct {
	o          ResumeOptions
	badRetries int
	slots      chan struct{} // downloads in flight
	dec        *zstd.Decoder // DecodeAll, shared by the workers
	log        *slog.Logger
	received   atomic.Int64 // bytes of chunks received, refused ones too
	refused    atomic.Int64
}

// getOnce GETs url into buf (reused; grown as needed) and refuses a body
// over limit bytes with errRefused; token, when set, is sent as a bearer
// token, and idle bounds the silence allowed.
func (f *fetcher) getOnce(ctx context.Context, url, token string, idleFor time.Duration, limit int64, buf []byte) ([]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return buf, fmt.Errorf("%q: %w", url, err)
	}
	req.Header.Set("Accept-Encoding", "identity")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// A request that gets no answer, or a body that stops, for idleFor
	// is dropped (and repeated).
	idle := time.AfterFunc(idleFor, cancel)
	defer idle.Stop()
	resp, err := f.o.Client.Do(req)
	if err != nil {
		return buf, fmt.Errorf("get %s: %w (%w)", url, err, errTransient)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		err := fmt.Errorf("get %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
		if resp.StatusCode == http.StatusServiceUnavailable {
			err = fmt.Errorf("%w (%w)", err, errBusy)
		}
		if resp.StatusCode >= 500 {
			err = fmt.Errorf("%w (%w)", err, errTransient)
		}
		return buf, err
	}
	if resp.ContentLength > limit {
		return buf, fmt.Errorf("%w: %d bytes announced, at most %d expected", errRefused, resp.ContentLength, limit)
	}
	if n := resp.ContentLength; n >= 0 && int64(cap(buf)) < n+1 {
		buf = make([]byte, 0, n+1) // +1: room to see the end
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := resp.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if n > 0 {
			f.received.Add(int64(n))
			idle.Reset(idleFor)
		}
		switch {
		case int64(len(buf)) > limit:
			return buf, fmt.Errorf("%w: more than %d bytes", errRefused, limit)
		case err == io.EOF:
			return buf, nil
		case err != nil:
			return buf, fmt.Errorf("get %s: body after %d bytes: %w (%w)", url, len(buf), err, errTransient)
		}
	}
}

// get is getOnce with the transient failures repeated.
func (f *fetcher) get(ctx context.Context, url string, limit int64, buf []byte) ([]byte, error) {
	backoff := f.o.Backoff
	for fails := 1; ; fails++ {
		select {
		case f.slots <- struct{}{}:
		case <-ctx.Done():
			return buf, context.Cause(ctx)
		}
		var err error
		buf, err = f.getOnce(ctx, url, "", f.o.IdleTimeout, limit, buf)
		<-f.slots
		if err == nil || !errors.Is(err, errTransient) || ctx.Err() != nil {
			return buf, err
		}
		if fails > f.o.MaxRetries {
			return buf, fmt.Errorf("%d attempts failed: %w", fails, err)
		}
		f.log.Warn("request failed, retrying", "url", url, "attempt", fails, "err", err)
		if err := sleep(ctx, backoff); err != nil {
			return buf, err
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// peerIdle is how long a peer may stay silent before its fetch fails
// (and the tracker offers another source).
const peerIdle = 10 * time.Second

// chunkLimit bounds the compressed size of a chunk of n raw bytes: zstd
// never grows data by more than a few bytes per 128 KiB block.
func chunkLimit(n int) int64 { return int64(n) + int64(n)/64 + 64<<10 }

// peerChunk fetches chunk digest from another agent, once: a failure is
// for the tracker to answer (another peer, or metald), and data that is
// not the chunk is errRefused (the peer is reported corrupt).
func (f *fetcher) peerChunk(ctx context.Context, p agentapi.Peer, digest string, raw []byte, comp *[]byte) error {
	select {
	case f.slots <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	url := "http://" + p.Addr + agentapi.PeerChunkPath + digest
	var err error
	*comp, err = f.getOnce(ctx, url, p.Token, min(f.o.IdleTimeout, peerIdle), chunkLimit(len(raw)), *comp)
	<-f.slots
	if err == nil {
		err = f.verify(*comp, digest, raw)
	}
	if errors.Is(err, errRefused) {
		f.refused.Add(1)
	}
	return err
}

// chunk fetches the chunk named digest into raw (its exact length,
// aligned), decompressed and verified; comp is the worker's reusable
// buffer for the compressed bytes.
func (f *fetcher) chunk(ctx context.Context, url, digest string, raw []byte, comp *[]byte) error {
	limit := chunkLimit(len(raw))
	backoff := f.o.Backoff
	for bad := 1; ; bad++ {
		var err error
		*comp, err = f.get(ctx, url, limit, *comp)
		if err == nil {
			err = f.verify(*comp, digest, raw)
		}
		if err == nil || !errors.Is(err, errRefused) {
			return err
		}
		f.refused.Add(1)
		if bad > f.badRetries {
			return fmt.Errorf("refused %d times, last: %w", bad, err)
		}
		f.log.Warn("chunk refused, fetching it again", "url", url, "attempt", bad, "err", err)
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// verify decompresses comp into raw (no more than len(raw) bytes) and
// checks its SHA-256.
func (f *fetcher) verify(comp []byte, digest string, raw []byte) error {
	out, err := f.dec.DecodeAll(comp, raw[:0:len(raw)])
	if err != nil {
		return fmt.Errorf("%w: zstd: %w", errRefused, err)
	}
	if len(out) != len(raw) {
		return fmt.Errorf("%w: %d bytes decompressed, want %d", errRefused, len(out), len(raw))
	}
	if &out[0] != &raw[0] {
		copy(raw, out)
	}
	sum := sha256.Sum256(raw)
	if got := hex.EncodeToString(sum[:]); got != digest {
		return fmt.Errorf("%w: sha256 %s", errRefused, got)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// keepAlive returns c with a transport that keeps conns idle connections
// per host (net/http keeps 2), so that the downloads in flight reuse
// theirs instead of dialling (and handshaking) anew; release closes them.
func keepAlive(c *http.Client, conns int) (client *http.Client, release func()) {
	t, ok := c.Transport.(*http.Transport)
	if c.Transport == nil {
		t, ok = http.DefaultTransport.(*http.Transport)
	}
	if !ok || t.MaxIdleConnsPerHost >= conns {
		return c, func() {}
	}
	t = t.Clone()
	t.MaxIdleConnsPerHost = conns
	cc := *c
	cc.Transport = t
	return &cc, t.CloseIdleConnections
}

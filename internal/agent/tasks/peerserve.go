package tasks

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/time/rate"

	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/imaging"
)

// peerServer serves the chunks this agent has verified to the other
// agents of its wave: GET agentapi.PeerChunkPath + digest with its token
// as a bearer token. A chunk is served as the compressed bytes this agent
// received and verified, while they are among the recent ones kept in
// memory; otherwise it is read back from the disk and checked against its
// digest before a byte leaves (never anything else of the disk: the
// config drive, or a chunk the disk no longer holds), then compressed. At most conns requests are served at once (more get 503),
// at most rate bytes a second in all.
type peerServer struct {
	m       *imaging.Manifest
	tgt     *chunkTarget
	token   string
	port    int
	ln      net.Listener
	srv     *http.Server
	limiter *rate.Limiter // nil: no bound
	sem     chan struct{}
	enc     *zstd.Encoder
	log     *slog.Logger
	mu      sync.RWMutex
	held    map[string]int // digest → a chunk index that holds it
	// recent keeps the compressed bytes of the chunks verified last (what
	// came over the wire, checked before it counted), served as they are
	// without reading the disk or compressing again: a wave asks for a
	// chunk most right after it arrives. Bounded by recentMax bytes.
	recent      map[string][]byte
	recentOrder []string
	recentBytes int64
	bufs        sync.Pool
	served      atomic.Int64 // compressed bytes sent
	refused     atomic.Int64 // requests refused (token, unknown chunk, busy)
}

// startPeerServer listens on the address this agent reaches metald from
// (chunkURL's host decides the route) at cfg.Port and serves until close.
func startPeerServer(cfg agentapi.Swarm, chunkURL string, m *imaging.Manifest, tgt *chunkTarget, log *slog.Logger) (*peerServer, error) {
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return nil, fmt.Errorf("peer token: %w", err)
	}
	host := localAddrFor(chunkURL)
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return nil, fmt.Errorf("serving chunks to peers: %w", err)
	}
	conns := cfg.MaxConns
	if conns <= 0 {
		conns = 4
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(conns))
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &peerServer{m: m, tgt: tgt, token: hex.EncodeToString(tok), port: ln.Addr().(*net.TCPAddr).Port, ln: ln,
		sem: make(chan struct{}, conns), enc: enc, log: log, held: map[string]int{}, recent: map[string][]byte{}}
	if cfg.UploadBytesPerSec > 0 {
		s.limiter = rate.NewLimiter(rate.Limit(cfg.UploadBytesPerSec), int(max(32<<10, min(cfg.UploadBytesPerSec, 256<<10))))
	}
	s.bufs.New = func() any { return alignedBuf(int(m.ChunkSize)) }
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	go s.srv.Serve(ln) //nolint:errcheck // ends with close
	log.Info("serving verified chunks to peers", "addr", ln.Addr().String(), "max_conns", conns, "upload_bytes_per_sec", cfg.UploadBytesPerSec)
	return s, nil
}

// localAddrFor is the local address of the route to rawURL's host (no
// packet is sent); "" (every address) when it cannot tell.
func localAddrFor(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	c, err := net.Dial("udp", net.JoinHostPort(u.Hostname(), "9"))
	if err != nil {
		return ""
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String()
}

// hold makes chunk digest, at index i on the disk, servable.
func (s *peerServer) hold(digest string, i int) {
	s.mu.Lock()
	s.held[digest] = i
	s.mu.Unlock()
}

// recentMax bounds the compressed chunks kept in memory for serving.
const recentMax = 64 << 20

// keep remembers comp, the verified compressed bytes of chunk digest, for
// serving without the disk (the oldest forgotten beyond recentMax).
func (s *peerServer) keep(digest string, comp []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.recent[digest]; ok || int64(len(comp)) > recentMax/4 {
		return
	}
	s.recent[digest] = comp
	s.recentOrder = append(s.recentOrder, digest)
	s.recentBytes += int64(len(comp))
	for s.recentBytes > recentMax && len(s.recentOrder) > 0 {
		old := s.recentOrder[0]
		s.recentOrder = s.recentOrder[1:]
		s.recentBytes -= int64(len(s.recent[old]))
		delete(s.recent, old)
	}
}

func (s *peerServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	s.enc.Close()
}

func (s *peerServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if subtle.ConstantTimeCompare([]byte(tok), []byte(s.token)) != 1 {
		s.refused.Add(1)
		http.Error(w, "peer token missing or wrong", http.StatusUnauthorized)
		return
	}
	digest, ok := strings.CutPrefix(r.URL.Path, agentapi.PeerChunkPath)
	s.mu.RLock()
	i, held := s.held[digest]
	kept := s.recent[digest]
	s.mu.RUnlock()
	if !ok || !held {
		s.refused.Add(1)
		http.Error(w, "no such chunk here", http.StatusNotFound)
		return
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		s.refused.Add(1)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	comp := kept
	if comp == nil {
		buf := s.bufs.Get().([]byte)
		defer s.bufs.Put(buf) //nolint:staticcheck // a slice header, reused as is
		off, n := s.m.ChunkRange(i)
		raw := buf[:n]
		if err := s.tgt.readAt(raw, off); err != nil || sha256Hex(raw) != digest {
			s.mu.Lock()
			delete(s.held, digest)
			s.mu.Unlock()
			s.log.Warn("a chunk served to peers no longer reads back as itself: not served", "digest", digest, "offset", off, "err", err)
			http.Error(w, "chunk unreadable", http.StatusInternalServerError)
			return
		}
		comp = s.enc.EncodeAll(raw, nil)
	}
	w.Header().Set("Content-Type", "application/zstd")
	w.Header().Set("Content-Length", strconv.Itoa(len(comp)))
	for len(comp) > 0 {
		k := min(len(comp), 32<<10)
		if s.limiter != nil {
			if err := s.limiter.WaitN(r.Context(), k); err != nil {
				return
			}
		}
		if _, err := w.Write(comp[:k]); err != nil {
			if !errors.Is(err, context.Canceled) {
				s.log.Debug("peer went away", "digest", digest, "err", err)
			}
			return
		}
		s.served.Add(int64(k))
		comp = comp[k:]
	}
}

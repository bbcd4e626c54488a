package tasks

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

// TestProvisionChunksServerGone: the chunk server goes away mid-way
// (its connections cut, then connection refused for a while) and comes
// back on the same address: the provision carries on and completes.
func TestProvisionChunksServerGone(t *testing.T) {
	raw := fixture()
	cs := newChunkServer(t, raw) // for its manifest, chunks and handler
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var (
		mu      sync.Mutex
		srv     = &http.Server{}
		served  atomic.Int32
		down    = make(chan struct{})
		back    = make(chan struct{})
		restart sync.Once
	)
	chunks := cs.handler(t)
	var handler http.Handler
	handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if served.Add(1) == 8 {
			// Mid-way: everything is cut, and the address refuses
			// connections for 300 ms.
			restart.Do(func() {
				go func() {
					mu.Lock()
					old := srv
					mu.Unlock()
					_ = old.Close()
					close(down)
					time.Sleep(300 * time.Millisecond)
					ln2, err := net.Listen("tcp", addr)
					if err != nil {
						t.Errorf("listening again on %s: %v", addr, err)
						return
					}
					mu.Lock()
					srv = &http.Server{Handler: handler}
					s := srv
					mu.Unlock()
					close(back)
					if err := s.Serve(ln2); !errors.Is(err, http.ErrServerClosed) {
						t.Errorf("serve: %v", err)
					}
				}()
			})
			<-down
			return
		}
		chunks.ServeHTTP(w, r)
	})
	srv.Handler = handler
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		_ = srv.Close()
	})

	cs.URL = "http://" + addr
	r, disk := provisionSetup(t, 8<<20)
	r.Resume = ResumeOptions{Backoff: 20 * time.Millisecond, MaxRetries: 8, IdleTimeout: 5 * time.Second}
	r.Chunks = ChunkOptions{Fetches: 2, Workers: 1}
	var logs syncBuffer
	r.Log = slog.New(slog.NewTextHandler(&logs, nil))
	res := r.RunTask(context.Background(), cs.task(false), func(agentapi.Progress) {})
	select {
	case <-back:
	default:
		t.Fatal("the server never went away")
	}
	if !res.Success || res.SHA256 != sha(raw) {
		t.Fatalf("result %+v", res)
	}
	if got, _ := os.ReadFile(disk); !bytes.Equal(got, raw) {
		t.Fatal("disk differs from the raw image")
	}
	if !strings.Contains(logs.String(), "connection refused") {
		t.Errorf("no request was refused while the server was away:\n%s", logs.String())
	}
	if n := int(served.Load()); n <= 8 || n > 1+dataChunks(cs.m)+8 {
		t.Errorf("%d requests served for a manifest and %d data chunks", n, dataChunks(cs.m))
	}
}

// syncBuffer is a bytes.Buffer for a logger written from several
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

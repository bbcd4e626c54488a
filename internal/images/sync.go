package images

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metal-iaas/metal/pkg/inventory"
)

// With an image store the library is read back from it (Sync): every
// tag of the store that is an image as storePut writes it gets an
// inventory record, a record whose file changed in the store is updated
// (and the stale cached file dropped), and a record whose tag is gone
// from the store is removed — so metalds with separate inventories, one
// store, list the same images. Sync runs before `image list`, on a
// lookup that misses (the API, /images/<name>, a provision) and every
// Config.SyncInterval (Run).

// Defaults of the store sync.
const (
	DefaultSyncInterval = 30 * time.Second
	// defaultMissInterval: a lookup that misses starts a sync at most
	// this often (a client asking for names that do not exist cannot
	// keep metald reading the registry).
	defaultMissInterval = time.Second
	// syncTimeout bounds one sync, whoever waits for it.
	syncTimeout = 2 * time.Minute
	// syncWait bounds how long a list or a lookup waits for a sync (a
	// slow registry): then it answers from the inventory as it is.
	syncWait = 15 * time.Second
)

// SyncResult counts what one sync changed.
type SyncResult struct {
	Added, Updated, Removed, Refused int
}

// flight is one sync.
type flight struct {
	done    chan struct{} // closed when res and err are set
	started time.Time
	res     SyncResult
	err     error
}

// syncState is the one sync in flight and the last one done.
type syncState struct {
	mu       sync.Mutex
	inflight *flight // the running sync
	last     *flight // the last done

	// nameMu guards busy, touched and seen. A push with its record
	// (Ingest) or a removal (Delete) holds its name (hold) for its
	// whole length; a sync leaves alone every name held at any time
	// since it started reading the store, so it never takes the store
	// ahead of (or behind) this metald's own inventory for a
	// record, nor drops a file just stored.
	nameMu  sync.Mutex
	busy    map[string]int
	touched map[string]bool
	seen    map[string]bool // names seen in the store (storeSeenFile); nil until loaded

	syncs   *prometheus.CounterVec // result
	changes *prometheus.CounterVec // change
	refused prometheus.Counter
	warned  map[string]bool // local-only images already warned of

	base context.Context // of every sync; ended when Run returns
	stop context.CancelFunc
}

func newSyncState() *syncState {
	base, stop := context.WithCancel(context.Background())
	return &syncState{base: base, stop: stop,
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metald_image_store_syncs_total",
			Help: "Reads of the image library back from the image store, by result (ok, error)."}, []string{"result"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metald_image_store_changes_total",
			Help: "Inventory records a store sync added, updated or removed."}, []string{"change"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "metald_image_store_tags_refused_total",
			Help: "Tags of the image store skipped as no image of the library (another image pushed into the prefix, annotations missing or malformed), each counted once per manifest."}),
		warned: map[string]bool{}, busy: map[string]int{}, touched: map[string]bool{},
	}
}

// hold marks name as being pushed or removed until the returned func is
// called (without an image store there is no sync to keep away).
func (s *Service) hold(name string) func() {
	if s.cfg.ImageStore == nil {
		return func() {}
	}
	st := s.sync
	st.nameMu.Lock()
	st.busy[name]++
	st.touched[name] = true
	st.nameMu.Unlock()
	return func() {
		st.nameMu.Lock()
		if st.busy[name]--; st.busy[name] <= 0 {
			delete(st.busy, name)
		}
		st.nameMu.Unlock()
	}
}

// StoreCollectors are the sync's metrics.
func (s *Service) StoreCollectors() []prometheus.Collector {
	return []prometheus.Collector{s.sync.syncs, s.sync.changes, s.sync.refused}
}

// Run syncs the library from the image store every SyncInterval until
// ctx ends; without an image store it only waits.
func (s *Service) Run(ctx context.Context) error {
	if s.cfg.ImageStore == nil {
		<-ctx.Done()
		return nil
	}
	every := s.cfg.SyncInterval
	if every <= 0 {
		every = DefaultSyncInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := s.Sync(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("image store sync", "store", s.cfg.ImageStore.String(), "err", err)
		}
		select {
		case <-ctx.Done():
			// No sync outlives Run (the inventory closes after it).
			st := s.sync
			st.stop()
			st.mu.Lock()
			f := st.inflight
			st.mu.Unlock()
			if f != nil {
				<-f.done
			}
			return nil
		case <-t.C:
		}
	}
}

// Sync reads the library back from the image store (a no-op without
// one). It returns once a sync that started after it was called is done:
// concurrent callers share one registry round.
func (s *Service) Sync(ctx context.Context) (SyncResult, error) {
	return s.syncSince(ctx, time.Now())
}

// syncSince returns the result of a sync that started at or after since,
// starting one if none did (one at a time).
func (s *Service) syncSince(ctx context.Context, since time.Time) (SyncResult, error) {
	if s.cfg.ImageStore == nil {
		return SyncResult{}, nil
	}
	st := s.sync
	for {
		st.mu.Lock()
		if st.last != nil && !st.last.started.Before(since) {
			f := st.last
			st.mu.Unlock()
			return f.res, f.err
		}
		f := st.inflight
		if f == nil {
			f = &flight{done: make(chan struct{}), started: time.Now()}
			st.inflight = f
			go s.runSync(f)
		}
		st.mu.Unlock()
		select {
		case <-ctx.Done():
			return SyncResult{}, ctx.Err()
		case <-f.done:
		}
		if !f.started.Before(since) {
			return f.res, f.err
		}
	}
}

// runSync runs one sync, detached from whoever asked (others wait for
// it too), and publishes its outcome.
func (s *Service) runSync(f *flight) {
	ctx, cancel := context.WithTimeout(s.sync.base, syncTimeout)
	defer cancel()
	f.res, f.err = s.syncOnce(ctx)
	result := "ok"
	if f.err != nil {
		result = "error"
	}
	s.sync.syncs.WithLabelValues(result).Inc()
	st := s.sync
	st.mu.Lock()
	st.last, st.inflight = f, nil
	st.mu.Unlock()
	close(f.done)
}

// Image returns the record of name; on a miss, with an image store, it
// first reads the library back from the store (at most once a second
// for misses), so an image another metald stored is found.
func (s *Service) Image(ctx context.Context, name string) (inventory.Image, error) {
	img, err := s.store.GetImage(ctx, name)
	if err == nil || !errors.Is(err, inventory.ErrNotFound) || s.cfg.ImageStore == nil {
		return img, err
	}
	every := s.cfg.SyncMinInterval
	if every <= 0 {
		every = defaultMissInterval
	}
	wctx, cancel := context.WithTimeout(ctx, syncWait)
	defer cancel()
	if _, serr := s.syncSince(wctx, time.Now().Add(-every)); serr != nil {
		s.log.Warn("image store sync on a miss", "image", name, "err", serr)
		return img, err
	}
	return s.store.GetImage(ctx, name)
}

// List returns every image, read back from the store first (a store
// that cannot be read is logged; the records are listed as they are).
func (s *Service) List(ctx context.Context) ([]inventory.Image, error) {
	wctx, cancel := context.WithTimeout(ctx, syncWait)
	defer cancel()
	if _, err := s.Sync(wctx); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.log.Warn("image store sync before a list", "err", err)
	}
	return s.store.ListImages(ctx)
}

package images

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/metal-iaas/metal/pkg/inventory"
)

// One sync's work: the inventory made to match the store's tags
// (sync.go runs it, storeread.go reads each tag).

// syncOnce lists the store and makes the inventory match it.
func (s *Service) syncOnce(ctx context.Context) (SyncResult, error) {
	var res SyncResult
	st, store := s.sync, s.cfg.ImageStore
	st.nameMu.Lock()
	st.touched = map[string]bool{}
	for n := range st.busy {
		st.touched[n] = true
	}
	if err := s.loadSeenLocked(); err != nil {
		st.nameMu.Unlock()
		return res, err
	}
	st.nameMu.Unlock()
	entries, err := store.List(ctx)
	if err != nil {
		return res, fmt.Errorf("image store %s: %w", store, err)
	}
	recs, err := s.store.ListImages(ctx)
	if err != nil {
		return res, err
	}
	have := map[string]inventory.Image{}
	for _, r := range recs {
		have[r.Name] = r
	}
	inStore := map[string]bool{}
	for _, e := range entries {
		inStore[e.Image] = true // a refused tag keeps its name's record too
		img, err := s.fromStore(e)
		if err != nil {
			res.Refused++
			if e.New { // once per manifest
				st.refused.Inc()
				s.log.Warn("image store: tag skipped", "store", store.String(), "tag", e.Image, "digest", e.Digest, "reason", err)
				s.event(ctx, "image.store_refused", err.Error(), map[string]any{"image": e.Image, "digest": e.Digest})
			}
			continue
		}
		if err := s.apply(ctx, &res, img, have); err != nil {
			return res, err
		}
	}
	for name, old := range have {
		if inStore[name] {
			continue
		}
		if err := s.remove(ctx, &res, old); err != nil {
			return res, err
		}
	}
	st.nameMu.Lock()
	for name := range st.seen {
		if !inStore[name] && !st.touched[name] {
			delete(st.seen, name)
		}
	}
	err = s.saveSeenLocked()
	st.nameMu.Unlock()
	if err != nil {
		return res, err
	}
	if res.Updated+res.Removed > 0 {
		if _, err := s.gcChunks(); err != nil {
			s.log.Warn("chunk gc", "err", err)
		}
	}
	return res, nil
}

// apply records img, read from the store, unless its name was held
// since the sync started.
func (s *Service) apply(ctx context.Context, res *SyncResult, img inventory.Image, have map[string]inventory.Image) error {
	st := s.sync
	st.nameMu.Lock()
	defer st.nameMu.Unlock()
	if st.touched[img.Name] {
		return nil
	}
	st.seen[img.Name] = true
	old, ok := have[img.Name]
	switch {
	case !ok:
		if err := s.store.PutImage(ctx, img); err != nil {
			return err
		}
		res.Added++
		st.changes.WithLabelValues("added").Inc()
		s.log.Info("image added from the store", "image", img.Name, "sha256", img.SHA256, "raw_sha256", img.RawSHA256)
		s.event(ctx, "image.added", "image "+img.Name+" found in the image store", map[string]any{"image": img.Name, "sha256": img.SHA256})
	case old.SHA256 != img.SHA256:
		if err := s.store.PutImage(ctx, img); err != nil {
			return err
		}
		s.dropLocal(old)
		res.Updated++
		st.changes.WithLabelValues("updated").Inc()
		s.log.Info("image replaced in the store", "image", img.Name, "sha256", img.SHA256, "was", old.SHA256)
		s.event(ctx, "image.updated", "image "+img.Name+" replaced in the image store", map[string]any{"image": img.Name, "sha256": img.SHA256})
	}
	return nil
}

// remove forgets a record whose tag is not in the store, if the store
// had it once (seen) and its name was not held since the sync started.
func (s *Service) remove(ctx context.Context, res *SyncResult, old inventory.Image) error {
	st := s.sync
	st.nameMu.Lock()
	defer st.nameMu.Unlock()
	if st.touched[old.Name] {
		return nil
	}
	if !st.seen[old.Name] {
		if !st.warned[old.Name] {
			st.warned[old.Name] = true
			s.log.Warn("image store: image not in the store, kept (stored before --image-store?); other metalds do not see it", "image", old.Name)
		}
		return nil
	}
	if err := s.store.DeleteImage(ctx, old.Name); err != nil && !errors.Is(err, inventory.ErrNotFound) {
		return err
	}
	s.dropLocal(old)
	delete(st.seen, old.Name)
	res.Removed++
	st.changes.WithLabelValues("removed").Inc()
	s.log.Info("image removed from the store", "image", old.Name)
	s.event(ctx, "image.removed", "image "+old.Name+" removed from the image store", map[string]any{"image": old.Name})
	return nil
}

// dropLocal removes what this metald cached of a record the store no
// longer has: its file and chunk manifest (the chunks go with gcChunks).
func (s *Service) dropLocal(img inventory.Image) {
	for _, p := range []string{s.Path(img), s.manifestPath(img.Name)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("image cache: not removed", "file", p, "err", err)
		}
	}
}

// event records what a sync did for the event stream (best effort).
func (s *Service) event(ctx context.Context, typ, msg string, data map[string]any) {
	if _, err := s.store.AppendEvent(ctx, inventory.Event{Type: typ, Message: msg, Data: data}); err != nil {
		s.log.Warn("event not recorded", "type", typ, "err", err)
	}
}

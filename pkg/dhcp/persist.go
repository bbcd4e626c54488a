package dhcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
)

// Store writes happen outside the allocator's mutex, so that one slow
// durable write does not stall every other client. Decisions are still
// taken under the mutex, on the in-memory index, so no address is given
// twice; what must stay ordered are one MAC's writes (a lease, then its
// release; a stale record's deletion, then that MAC's new lease). Every
// write is therefore staged under the mutex with a sequence number on
// its MAC's macWriter, which records only the latest decision; a commit
// writes that latest decision under the macWriter's own lock, unless a
// later commit already did. A record thus never goes back to an older
// decision, and an ACK leaves only once a decision at least as new as
// its lease is in the store.

// macWriter serialises the store writes of one MAC.
type macWriter struct {
	mu   sync.Mutex // held while writing this MAC's record
	done uint64     // sequence of the decision last written; under mu
	refs int        // staged writes not yet committed; under Allocator.mu
	want staged     // the latest decision; under Allocator.mu
}

// staged is one decided store write: a lease to put, or a deletion.
type staged struct {
	seq   uint64
	mac   net.HardwareAddr
	lease Lease
	del   bool
}

// write is a handle on a staged write, for commit.
type write struct {
	key string
	w   *macWriter
	seq uint64
}

// stage records the latest decision for mac's store record; a.mu is held.
func (a *Allocator) stage(mac net.HardwareAddr, l Lease, del bool) write {
	key := mac.String()
	w := a.writers[key]
	if w == nil {
		w = &macWriter{}
		a.writers[key] = w
	}
	a.seq++
	w.refs++
	w.want = staged{seq: a.seq, mac: mac, lease: l, del: del}
	return write{key: key, w: w, seq: a.seq}
}

// errBusy: another write of the same MAC is under way (commit without
// waiting).
var errBusy = errors.New("dhcp: lease write under way")

// commit makes sure that the store holds wr's decision or a later one of
// the same MAC; a.mu is not held. Without wait it returns errBusy, wr
// still staged, when that MAC's record is being written.
func (a *Allocator) commit(ctx context.Context, wr write, wait bool) error {
	if wait {
		wr.w.mu.Lock()
	} else if !wr.w.mu.TryLock() {
		return errBusy
	}
	defer func() {
		wr.w.mu.Unlock()
		a.mu.Lock()
		if wr.w.refs--; wr.w.refs == 0 {
			delete(a.writers, wr.key)
		}
		a.mu.Unlock()
	}()
	if wr.w.done >= wr.seq {
		return nil // a later decision is already written
	}
	a.mu.Lock()
	want := wr.w.want
	a.mu.Unlock()
	var err error
	if want.del {
		err = a.cfg.Store.Delete(ctx, want.mac)
	} else {
		err = a.cfg.Store.Put(ctx, want.lease)
	}
	if err != nil {
		return err
	}
	wr.w.done = want.seq
	return nil
}

// flushStale deletes the store records of MACs whose address was reused.
// It waits for no other client's write: a deletion whose MAC is being
// written stays staged for the next flush, and one that fails is staged
// again, unless the MAC has a newer record by then.
func (a *Allocator) flushStale(ctx context.Context) error {
	a.mu.Lock()
	stale := a.stale
	a.stale = nil
	a.mu.Unlock()
	var first error
	for _, wr := range stale {
		err := a.commit(ctx, wr, false)
		if err == nil {
			continue
		}
		if errors.Is(err, errBusy) {
			a.mu.Lock()
			a.stale = append(a.stale, wr)
			a.mu.Unlock()
			continue
		}
		a.mu.Lock()
		mac := wr.w.want.mac
		if l, ok := a.byMAC[wr.key]; !ok || l.State == LeaseOffered {
			a.stale = append(a.stale, a.stage(mac, Lease{}, true))
		}
		a.mu.Unlock()
		if first == nil {
			first = fmt.Errorf("dhcp: delete stale lease of %s: %w", mac, err)
		}
	}
	return first
}

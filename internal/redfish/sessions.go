package redfish

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"strconv"
	"sync"
	"time"
)

// session is one Redfish login.
type session struct {
	id    string
	token string
	user  string
	// credential is the id of the credential the session was created
	// with: the session lives only as long as it does.
	credential string
	lastUsed   time.Time
}

// sessionStore keeps sessions in memory: X-Auth-Token → user. Sessions end
// by DELETE, after the idle timeout, when the oldest is evicted to stay
// under the limit, or when their credential is found revoked.
type sessionStore struct {
	mu      sync.Mutex
	byID    map[string]*session
	next    uint64
	timeout time.Duration
	max     int
	now     func() time.Time
}

func newSessionStore(timeout time.Duration, max int) *sessionStore {
	return &sessionStore{byID: map[string]*session{}, timeout: timeout, max: max, now: time.Now}
}

func (st *sessionStore) expireLocked() {
	now := st.now()
	for id, s := range st.byID {
		if now.Sub(s.lastUsed) > st.timeout {
			delete(st.byID, id)
		}
	}
}

// create starts a session for user, logged in with credential, and
// returns it.
func (st *sessionStore) create(user, credential string) session {
	var b [24]byte
	_, _ = rand.Read(b[:])
	st.mu.Lock()
	defer st.mu.Unlock()
	st.expireLocked()
	for len(st.byID) >= st.max {
		var oldest *session
		for _, s := range st.byID {
			if oldest == nil || s.lastUsed.Before(oldest.lastUsed) {
				oldest = s
			}
		}
		delete(st.byID, oldest.id)
	}
	st.next++
	s := &session{id: strconv.FormatUint(st.next, 10), token: hex.EncodeToString(b[:]), user: user,
		credential: credential, lastUsed: st.now()}
	st.byID[s.id] = s
	return *s
}

// lookup returns the session of a token and refreshes it.
func (st *sessionStore) lookup(token string) (session, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.expireLocked()
	for _, s := range st.byID {
		if subtle.ConstantTimeCompare([]byte(s.token), []byte(token)) == 1 {
			s.lastUsed = st.now()
			return *s, true
		}
	}
	return session{}, false
}

// dropCredential ends every session created with credential and returns
// how many there were.
func (st *sessionStore) dropCredential(credential string) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	for id, s := range st.byID {
		if s.credential == credential {
			delete(st.byID, id)
			n++
		}
	}
	return n
}

func (st *sessionStore) get(id string) (session, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.expireLocked()
	s, ok := st.byID[id]
	if !ok {
		return session{}, false
	}
	return *s, true
}

func (st *sessionStore) remove(id string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	_, ok := st.byID[id]
	delete(st.byID, id)
	return ok
}

func (st *sessionStore) list() []session {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.expireLocked()
	out := make([]session, 0, len(st.byID))
	for _, s := range st.byID {
		out = append(out, *s)
	}
	return out
}

package trust

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a token bucket per key (a source address, a MAC), so that
// one host on the provisioning network cannot make metald do unbounded
// work: a flood from one key is refused while every other key goes on.
// It holds at most max keys; buckets idle for long enough to have
// refilled are forgotten first, and when every key is busy a new key
// shares the overflow bucket, so memory stays bounded however many
// addresses a flood forges.
type Limiter struct {
	mu       sync.Mutex
	every    rate.Limit
	burst    int
	max      int
	buckets  map[string]*bucket
	overflow *rate.Limiter
	now      func() time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// NewLimiter allows perSecond requests a second per key, bursts of
// burst; perSecond <= 0 disables it (Allow is always true).
func NewLimiter(perSecond float64, burst int) *Limiter {
	if burst < 1 {
		burst = 1
	}
	return &Limiter{every: rate.Limit(perSecond), burst: burst, max: 8192, buckets: map[string]*bucket{},
		overflow: rate.NewLimiter(rate.Limit(perSecond), burst), now: time.Now}
}

// Allow reports whether key may make one more request now.
func (l *Limiter) Allow(key string) bool {
	if l == nil || l.every <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.max {
			l.forget(now)
		}
		if len(l.buckets) >= l.max {
			return l.overflow.AllowN(now, 1)
		}
		b = &bucket{lim: rate.NewLimiter(l.every, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	return b.lim.AllowN(now, 1)
}

// forget drops buckets idle long enough to be full again (a fresh
// bucket would behave the same).
func (l *Limiter) forget(now time.Time) {
	full := time.Duration(float64(l.burst) / float64(l.every) * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.seen) > full {
			delete(l.buckets, k)
		}
	}
}

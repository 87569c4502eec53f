package kafka

import (
	"sync"
	"time"
)

// Failed-login backoff. Each failed SASL login from a source (an IPv4
// address, or an IPv6 /64, which one host may hold whole) doubles the
// source's delay, from sasl-failure-delay up to sasl-failure-max-delay.
// The failed login is answered after that delay, and the source's later
// logins are spaced by it: each takes the source's next free slot, so
// parallel connections guess no faster than one connection. A login whose
// slot would be more than the maximum delay away is refused without its
// credentials being checked. A source's failures are forgotten once it has
// had none for failureMemory. All waits happen on the waiting connection's
// own read loop, so no goroutine is added and other connections are not
// held up; the connection caps bound how many wait.

// failureMemory is how long a source's failures count.
const failureMemory = time.Minute

// maxBackoffSources bounds the sources remembered; past it the oldest
// ones are forgotten first (the quiet ones).
const maxBackoffSources = 10000

type backoffSource struct {
	failures int
	last     time.Time // of the last failure
	next     time.Time // the source's next free login slot
}

// authBackoff tracks failed logins per source.
type authBackoff struct {
	base, max time.Duration
	mu        struct {
		sync.Mutex
		sources map[string]*backoffSource
	}
}

func newAuthBackoff(base, maxDelay time.Duration) *authBackoff {
	b := &authBackoff{base: base, max: maxDelay}
	b.mu.sources = make(map[string]*backoffSource)
	return b
}

// delayLocked is a source's current delay.
func (b *authBackoff) delayLocked(e *backoffSource) time.Duration {
	d := b.base
	for i := 1; i < e.failures && d < b.max; i++ {
		d *= 2
	}
	return min(d, b.max)
}

// slot returns when a login from src may be checked (now, for a source
// without recent failures), or false when the source's backoff is full:
// the login is refused unchecked.
func (b *authBackoff) slot(src string, now time.Time) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.mu.sources[src]
	if e == nil || now.Sub(e.last) > failureMemory || !e.next.After(now) {
		return now, true
	}
	if e.next.Sub(now) > b.max {
		return time.Time{}, false
	}
	at := e.next
	e.next = at.Add(b.delayLocked(e))
	return at, true
}

// failed records a failed login from src and returns how long to delay
// its answer.
func (b *authBackoff) failed(src string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.mu.sources[src]
	if e == nil {
		b.makeRoomLocked(now)
		e = &backoffSource{}
		b.mu.sources[src] = e
	}
	if now.Sub(e.last) > failureMemory {
		e.failures = 0
	}
	e.failures++
	e.last = now
	d := b.delayLocked(e)
	if next := now.Add(d); next.After(e.next) {
		e.next = next
	}
	return d
}

// makeRoomLocked forgets sources quiet for failureMemory and, if there
// are still too many, the one with the oldest failure.
func (b *authBackoff) makeRoomLocked(now time.Time) {
	if len(b.mu.sources) < maxBackoffSources {
		return
	}
	var oldest string
	for src, e := range b.mu.sources {
		if now.Sub(e.last) > failureMemory {
			delete(b.mu.sources, src)
		} else if oldest == "" || e.last.Before(b.mu.sources[oldest].last) {
			oldest = src
		}
	}
	if len(b.mu.sources) >= maxBackoffSources {
		delete(b.mu.sources, oldest)
	}
}

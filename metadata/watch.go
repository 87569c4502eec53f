package metadata

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// The watch hub delivers the FSM's events to watchers without ever making
// Apply wait for a watcher, and without a watcher ever missing an event.
//
// Apply publishes each batch's events once, after they are committed to
// Pebble: the hub appends them to a ring of recent events and signals the
// watchers whose prefix they match. Every watcher has its own goroutine and
// a position pos: every revision <= pos has been delivered or skipped. The
// goroutine delivers the events after pos from the ring; when pos has fallen
// behind the ring (a slow reader, or a Watch from an older revision), it
// reads them from the history in Pebble, which holds every event of the
// last historyLimit revisions. A watcher that falls behind even that has its
// channel closed (see the package documentation).
//
// Lock order: hub.mu is a leaf; Pebble is never read with it held.

const (
	defaultRingSize = 4096 // recent events kept in memory
	historyChunk    = 512  // revisions read from Pebble at a time
	watchBuffer     = 64   // capacity of a watcher's channel
)

// errWatcherCompacted ends a watcher whose position was compacted away.
var errWatcherCompacted = errors.New("metadata: watcher fell behind the history")

type watcher struct {
	prefix string
	out    chan Event
	notify chan struct{} // capacity 1: "there may be new matching events"
	pos    int64         // guarded by hub.mu
}

type hub struct {
	db       *pebble.DB
	logger   *slog.Logger
	ringSize int

	done chan struct{} // closed by close
	wg   sync.WaitGroup

	mu struct {
		sync.Mutex
		rev       int64   // last published revision
		compacted int64   // Pebble history holds revisions > compacted
		ring      []Event // every event with revision in (ringFrom, rev], in order
		ringFrom  int64
		watchers  map[*watcher]struct{}
		closed    bool
	}
}

func newHub(db *pebble.DB, rev, compacted int64, logger *slog.Logger) *hub {
	h := &hub{db: db, logger: logger, ringSize: defaultRingSize, done: make(chan struct{})}
	h.mu.rev, h.mu.compacted, h.mu.ringFrom = rev, compacted, rev
	h.mu.watchers = make(map[*watcher]struct{})
	return h
}

// publish records the events of revisions up to rev, all already committed
// to Pebble, and wakes the watchers they concern. It never blocks on a
// watcher.
func (h *hub) publish(events []Event, rev, compacted int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	oldRev := h.mu.rev
	h.mu.rev, h.mu.compacted = rev, compacted
	h.mu.ring = append(h.mu.ring, events...)
	h.trimLocked()
	for w := range h.mu.watchers {
		if matchesAny(events, w.prefix) {
			select {
			case w.notify <- struct{}{}:
			default:
			}
		} else if w.pos >= oldRev {
			// Idle and caught up: nothing here concerns it, so it need not
			// scan these revisions later (they may be gone from the ring).
			w.pos = max(w.pos, rev)
		}
	}
}

// trimLocked drops the oldest events once the ring holds twice its size,
// whole revisions at a time.
func (h *hub) trimLocked() {
	if len(h.mu.ring) < 2*h.ringSize {
		return
	}
	n := len(h.mu.ring) - h.ringSize
	for n < len(h.mu.ring) && h.mu.ring[n].KV.ModRevision == h.mu.ring[n-1].KV.ModRevision {
		n++
	}
	h.mu.ringFrom = h.mu.ring[n-1].KV.ModRevision
	h.mu.ring = append([]Event(nil), h.mu.ring[n:]...)
}

// reset forgets the ring after a snapshot restore; watchers catch up from
// the restored history.
func (h *hub) reset(rev, compacted int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.rev, h.mu.compacted, h.mu.ringFrom, h.mu.ring = rev, compacted, rev, nil
	for w := range h.mu.watchers {
		select {
		case w.notify <- struct{}{}:
		default:
		}
	}
}

func matchesAny(evs []Event, prefix string) bool {
	for i := range evs {
		if strings.HasPrefix(evs[i].KV.Key, prefix) {
			return true
		}
	}
	return false
}

// watch registers a watcher and starts its goroutine.
func (h *hub) watch(ctx context.Context, prefix string, from int64) (<-chan Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w := &watcher{prefix: prefix, out: make(chan Event, watchBuffer), notify: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.mu.closed:
		return nil, ErrClosed
	case from == 0:
		w.pos = h.mu.rev
	case from < h.mu.compacted:
		return nil, ErrCompacted
	default:
		w.pos = from
	}
	h.mu.watchers[w] = struct{}{}
	h.wg.Go(func() { h.run(ctx, w) })
	return w.out, nil
}

// run is a watcher's goroutine: it delivers events until ctx ends, the hub
// closes, or the watcher falls behind the kept history.
func (h *hub) run(ctx context.Context, w *watcher) {
	defer func() {
		h.mu.Lock()
		delete(h.mu.watchers, w)
		h.mu.Unlock()
		close(w.out)
	}()
	var evs []Event
	for {
		var fromRing bool
		evs, fromRing = h.fromRing(w, evs[:0])
		if !fromRing {
			var err error
			if evs, err = h.fromHistory(w, evs[:0]); err != nil {
				if errors.Is(err, errWatcherCompacted) {
					h.logger.Warn("closing a watch that fell behind the kept history", "prefix", w.prefix)
				} else {
					h.logger.Error("closing a watch: reading history failed", "prefix", w.prefix, "err", err)
				}
				return
			}
		}
		for _, ev := range evs {
			select {
			case w.out <- ev:
			case <-ctx.Done():
				return
			case <-h.done:
				return
			}
		}
		if fromRing && len(evs) == 0 && h.idle(w) {
			select {
			case <-w.notify:
			case <-ctx.Done():
				return
			case <-h.done:
				return
			}
		}
	}
}

// fromRing appends to dst the watcher's events after its position that the
// ring holds (at most a ring's worth) and advances the position past them.
// It returns false if the position is behind the ring.
func (h *hub) fromRing(w *watcher, dst []Event) ([]Event, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w.pos >= h.mu.rev {
		return dst, true
	}
	if w.pos < h.mu.ringFrom {
		return dst, false
	}
	ring := h.mu.ring
	// The ring is in revision order: find the first event after pos.
	i, j := 0, len(ring)
	for i < j {
		m := int(uint(i+j) >> 1)
		if ring[m].KV.ModRevision <= w.pos {
			i = m + 1
		} else {
			j = m
		}
	}
	for ; i < len(ring); i++ {
		if strings.HasPrefix(ring[i].KV.Key, w.prefix) {
			dst = append(dst, ring[i])
		}
	}
	w.pos = h.mu.rev
	return dst, true
}

// idle reports whether the watcher is caught up; the caller then waits for
// a signal. A signal left from events already delivered only costs one
// extra, empty pass.
func (h *hub) idle(w *watcher) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return w.pos >= h.mu.rev
}

// fromHistory reads up to historyChunk revisions after the watcher's
// position from Pebble, appends the matching events to dst and advances the
// position. The history is contiguous, so a first revision other than
// pos+1 means the position was compacted away.
func (h *hub) fromHistory(w *watcher, dst []Event) ([]Event, error) {
	h.mu.Lock()
	pos := w.pos
	h.mu.Unlock()
	it, err := h.db.NewIter(&pebble.IterOptions{LowerBound: histKey(pos + 1), UpperBound: prefixEnd([]byte(histPrefix))})
	if err != nil {
		return dst, err
	}
	defer it.Close()
	var last int64
	var all []Event
	for ok, n := it.First(), 0; ok && n < historyChunk; ok, n = it.Next(), n+1 {
		rev, err := revOfHistKey(it.Key())
		if err != nil {
			return dst, err
		}
		if last == 0 && rev != pos+1 {
			return dst, errWatcherCompacted
		}
		val, err := it.ValueAndErr()
		if err != nil {
			return dst, err
		}
		if all, err = decodeEvents(all[:0], rev, val); err != nil {
			return dst, err
		}
		for _, ev := range all {
			if strings.HasPrefix(ev.KV.Key, w.prefix) {
				dst = append(dst, ev)
			}
		}
		last = rev
	}
	if err := it.Error(); err != nil {
		return dst, err
	}
	if last == 0 {
		// Nothing after pos in Pebble although the hub published a later
		// revision: only a compaction that removed everything explains it.
		return dst, errWatcherCompacted
	}
	h.mu.Lock()
	w.pos = max(w.pos, last)
	h.mu.Unlock()
	return dst, nil
}

// close ends every watcher (their channels close) and waits for them.
func (h *hub) close() {
	h.mu.Lock()
	if h.mu.closed {
		h.mu.Unlock()
		return
	}
	h.mu.closed = true
	h.mu.Unlock()
	close(h.done)
	h.wg.Wait()
}

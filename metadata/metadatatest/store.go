package metadatatest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/magnetar-mq/magnetar/metadata"
)

// Store is an in-memory metadata.Store: a mutex, a map and an event history,
// with the semantics of metadata.Service (revisions, CAS, Txn, leases,
// paging, watches that resume from a revision, ErrCompacted, Close). It is
// for unit tests.
//
// Leases expire by the store's clock (WithClock; time.Now by default): a
// goroutine, started by the first Grant and stopped by Close, checks every
// lease tick (WithLeaseTick) and revokes the leases past their deadline.
type Store struct {
	historyLimit int64
	now          func() time.Time
	leaseTick    time.Duration
	done         chan struct{} // closed by Close
	wg           sync.WaitGroup

	mu struct {
		sync.Mutex
		rev       int64
		kvs       map[string]metadata.KV
		history   [][]metadata.Event // events of revisions (compacted, rev], one slice per revision
		compacted int64
		changed   chan struct{} // closed and replaced on every change
		closed    bool

		leases    map[metadata.LeaseID]*memLease
		lastLease metadata.LeaseID
		expiring  bool // the expiry goroutine runs
	}
}

type memLease struct {
	ttl      time.Duration
	deadline time.Time
	keys     map[string]struct{}
}

var _ metadata.Store = (*Store)(nil)

// StoreOption configures NewStore.
type StoreOption func(*Store)

// WithHistoryRevisions sets how many of the latest revisions' events are
// kept for watches (default metadata.DefaultHistoryRevisions).
func WithHistoryRevisions(n int64) StoreOption {
	return func(s *Store) { s.historyLimit = n }
}

// WithClock sets the clock that lease deadlines are measured by (default
// time.Now), so a test can expire a lease by moving its clock.
func WithClock(now func() time.Time) StoreOption {
	return func(s *Store) { s.now = now }
}

// WithLeaseTick sets how often expired leases are looked for (default
// 10 ms).
func WithLeaseTick(d time.Duration) StoreOption {
	return func(s *Store) { s.leaseTick = d }
}

// NewStore returns an empty in-memory store.
func NewStore(opts ...StoreOption) *Store {
	s := &Store{
		historyLimit: metadata.DefaultHistoryRevisions,
		now:          time.Now,
		leaseTick:    10 * time.Millisecond,
		done:         make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	s.mu.kvs = make(map[string]metadata.KV)
	s.mu.leases = make(map[metadata.LeaseID]*memLease)
	s.mu.changed = make(chan struct{})
	return s
}

func (s *Store) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return metadata.ErrClosed
	}
	return nil
}

func copyKV(kv metadata.KV) metadata.KV {
	kv.Value = append([]byte{}, kv.Value...)
	return kv
}

// Get implements metadata.Store.
func (s *Store) Get(ctx context.Context, key string) (metadata.KV, bool, error) {
	if err := s.lock(ctx); err != nil {
		return metadata.KV{}, false, err
	}
	defer s.mu.Unlock()
	kv, ok := s.mu.kvs[key]
	if !ok {
		return metadata.KV{}, false, nil
	}
	return copyKV(kv), true, nil
}

// Range implements metadata.Store.
func (s *Store) Range(ctx context.Context, prefix string, opts metadata.RangeOptions) (metadata.RangeResult, error) {
	if err := s.lock(ctx); err != nil {
		return metadata.RangeResult{}, err
	}
	defer s.mu.Unlock()
	var keys []string
	for k := range s.mu.kvs {
		if strings.HasPrefix(k, prefix) && (opts.StartAfter == "" || k > opts.StartAfter) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	res := metadata.RangeResult{Revision: s.mu.rev}
	if opts.Limit > 0 && len(keys) > opts.Limit {
		keys, res.More = keys[:opts.Limit], true
	}
	for _, k := range keys {
		res.KVs = append(res.KVs, copyKV(s.mu.kvs[k]))
	}
	return res, nil
}

// Put implements metadata.Store.
func (s *Store) Put(ctx context.Context, key string, value []byte, expectedVersion int64) (metadata.KV, error) {
	if key == "" {
		return metadata.KV{}, metadata.ErrInvalidKey
	}
	if err := s.lock(ctx); err != nil {
		return metadata.KV{}, err
	}
	defer s.mu.Unlock()
	cur := s.mu.kvs[key]
	if expectedVersion != metadata.AnyVersion && expectedVersion != cur.Version {
		return metadata.KV{}, fmt.Errorf("%w: %q is at version %d, expected %d", metadata.ErrVersionMismatch, key, cur.Version, expectedVersion)
	}
	kv := s.setLocked(s.mu.rev+1, key, value, metadata.NoLease)
	s.commitLocked([]metadata.Event{{Type: metadata.EventPut, KV: kv}})
	kv.Value = value
	return kv, nil
}

// setLocked writes key at revision rev attached to lease (which exists, or
// is NoLease), moving its lease attachment, and returns the stored KV; the
// caller records the event.
func (s *Store) setLocked(rev int64, key string, value []byte, lease metadata.LeaseID) metadata.KV {
	cur, ok := s.mu.kvs[key]
	kv := metadata.KV{Key: key, Value: append([]byte{}, value...), Version: cur.Version + 1, CreateRevision: rev, ModRevision: rev, Lease: lease}
	if ok {
		kv.CreateRevision = cur.CreateRevision
	}
	if l := s.mu.leases[cur.Lease]; l != nil {
		delete(l.keys, key)
	}
	if l := s.mu.leases[lease]; l != nil {
		l.keys[key] = struct{}{}
	}
	s.mu.kvs[key] = kv
	return kv
}

// removeLocked deletes the existing key at revision rev and detaches it
// from its lease; it returns the event.
func (s *Store) removeLocked(rev int64, key string) metadata.Event {
	if l := s.mu.leases[s.mu.kvs[key].Lease]; l != nil {
		delete(l.keys, key)
	}
	delete(s.mu.kvs, key)
	return metadata.Event{Type: metadata.EventDelete, KV: metadata.KV{Key: key, ModRevision: rev}}
}

// Delete implements metadata.Store.
func (s *Store) Delete(ctx context.Context, key string, expectedVersion int64) error {
	if key == "" {
		return metadata.ErrInvalidKey
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	cur, ok := s.mu.kvs[key]
	switch {
	case !ok && expectedVersion == metadata.AnyVersion:
		return nil
	case !ok:
		return fmt.Errorf("%w: %q", metadata.ErrNotFound, key)
	case expectedVersion != metadata.AnyVersion && expectedVersion != cur.Version:
		return fmt.Errorf("%w: %q is at version %d, expected %d", metadata.ErrVersionMismatch, key, cur.Version, expectedVersion)
	}
	s.commitLocked([]metadata.Event{s.removeLocked(s.mu.rev+1, key)})
	return nil
}

// commitLocked records the events of the next revision (one change of the
// store, all at that revision), compacts the history the way the service
// does, and wakes the watchers.
func (s *Store) commitLocked(evs []metadata.Event) {
	s.mu.rev++
	s.mu.history = append(s.mu.history, evs)
	if over := int64(len(s.mu.history)) - s.historyLimit; over > max(1, s.historyLimit/8) {
		s.mu.history = slices.Clone(s.mu.history[over:])
		s.mu.compacted += over
	}
	close(s.mu.changed)
	s.mu.changed = make(chan struct{})
}

// Watch implements metadata.Store. Each watcher has a goroutine that reads
// the history from its position, so writers never wait for it.
func (s *Store) Watch(ctx context.Context, prefix string, fromRevision int64) (<-chan metadata.Event, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	pos := fromRevision
	switch {
	case fromRevision == 0:
		pos = s.mu.rev
	case fromRevision < s.mu.compacted:
		return nil, metadata.ErrCompacted
	}
	out := make(chan metadata.Event, 64)
	s.wg.Go(func() { s.run(ctx, prefix, pos, out) })
	return out, nil
}

func (s *Store) run(ctx context.Context, prefix string, pos int64, out chan<- metadata.Event) {
	defer close(out)
	for {
		s.mu.Lock()
		if pos < s.mu.compacted {
			s.mu.Unlock()
			return // fell behind the history, like the service
		}
		var evs []metadata.Event
		if pos < s.mu.rev {
			for _, rev := range s.mu.history[pos-s.mu.compacted:] {
				evs = append(evs, rev...)
			}
			pos = s.mu.rev
		}
		changed := s.mu.changed
		s.mu.Unlock()
		for _, ev := range evs {
			if !strings.HasPrefix(ev.KV.Key, prefix) {
				continue
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			case <-s.done:
				return
			}
		}
		if len(evs) > 0 {
			continue
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		case <-s.done:
			return
		}
	}
}

// Close implements metadata.Store: later calls return metadata.ErrClosed and
// every watch channel is closed. It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.closed = true
	s.mu.Unlock()
	close(s.done)
	s.wg.Wait()
	return nil
}

package broker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/magnetar-mq/magnetar/metadata"
	"github.com/magnetar-mq/magnetar/metadata/catalog"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

// The policy cache keeps the policies stored on the namespaces and topics
// this broker has been asked about, so resolving a topic's effective
// policies on a hot path (every publish) is two map lookups. It is kept
// fresh by two watches of the metadata store (namespace rows and topic
// rows): a change made through any broker reaches every broker's cache as
// soon as the metadata service delivers the watch event, normally within
// milliseconds. A watch that breaks is resumed from the last revision seen
// (no event is lost); if that history is compacted, or before the first
// watch is established, the cache is emptied and refilled from the store.
// Entries are loaded on first use; the number of topic entries is capped.

const (
	// maxCachedTopicPolicies caps the topic entries of the cache; beyond it
	// entries are evicted (and reloaded when needed).
	maxCachedTopicPolicies = 1 << 16
	// maxCachedNamespaces caps the namespace and the tenant entries: a
	// request names any tenant and namespace it likes, and one that does
	// not exist is cached as absent, so they are capped like topics.
	maxCachedNamespaces = 1 << 14
	// policyLoadTimeout bounds one load from the metadata store.
	policyLoadTimeout = 10 * time.Second
)

// closedCh is the ready channel of entries that need no load.
var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// polEntry is one namespace's or topic's stored policies. Its fields are
// written once, before ready is closed; a change replaces the entry.
type polEntry struct {
	ready  chan struct{}
	rev    int64 // ModRevision of the row read (0: absent)
	exists bool
	pol    *catalogpb.Policies
	// grants are the permissions stored on the row: role -> Action bits
	// (a tenant's admin roles hold every action).
	grants map[string]uint32
	err    error
}

// polTable caches the policies of one kind of row (namespaces or topics).
type polTable[K comparable] struct {
	load func(ctx context.Context, k K) (polEntry, error)
	max  int
	mu   struct {
		sync.RWMutex
		m map[K]*polEntry
	}
}

func newPolTable[K comparable](max int, load func(context.Context, K) (polEntry, error)) *polTable[K] {
	t := &polTable[K]{load: load, max: max}
	t.mu.m = make(map[K]*polEntry)
	return t
}

// get returns the stored policies of k (exists is false when the row does
// not exist), loading them on first use. Concurrent callers share a load.
func (t *polTable[K]) get(ctx context.Context, k K) (pol *catalogpb.Policies, exists bool, err error) {
	e, err := t.entry(ctx, k)
	if err != nil {
		return nil, false, err
	}
	return e.pol, e.exists, nil
}

// entry returns the cached entry of k, loading it on first use.
// Concurrent callers share a load.
func (t *polTable[K]) entry(ctx context.Context, k K) (*polEntry, error) {
	t.mu.RLock()
	e := t.mu.m[k]
	t.mu.RUnlock()
	if e == nil {
		t.mu.Lock()
		if e = t.mu.m[k]; e == nil {
			e = &polEntry{ready: make(chan struct{})}
			t.evictLocked()
			t.mu.m[k] = e
			t.mu.Unlock()
			t.fill(ctx, k, e)
		} else {
			t.mu.Unlock()
		}
	}
	select {
	case <-e.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if e.err != nil {
		return nil, e.err
	}
	return e, nil
}

// fill loads a placeholder entry. The load does not end with the caller's
// context, since others may wait for it.
func (t *polTable[K]) fill(ctx context.Context, k K, e *polEntry) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), policyLoadTimeout)
	v, err := t.load(lctx, k)
	cancel()
	t.mu.Lock()
	e.rev, e.exists, e.pol, e.grants, e.err = v.rev, v.exists, v.pol, v.grants, err
	if err != nil && t.mu.m[k] == e {
		delete(t.mu.m, k) // the next caller tries again
	}
	close(e.ready)
	t.mu.Unlock()
}

// update applies a watched change of k, if k is cached (or being loaded:
// then the change wins over what the load read, which may be older).
func (t *polTable[K]) update(k K, v polEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.mu.m[k]
	if !ok {
		return
	}
	select {
	case <-e.ready:
		if e.err == nil && e.rev >= v.rev && v.rev != 0 {
			return // the cache already holds this change or a later one
		}
	default:
	}
	v.ready = closedCh
	t.mu.m[k] = &v
}

// invalidate drops k, so the next get reads the store.
func (t *polTable[K]) invalidate(k K) {
	t.mu.Lock()
	delete(t.mu.m, k)
	t.mu.Unlock()
}

// reset drops every entry (loads under way finish for their callers but
// are not kept).
func (t *polTable[K]) reset() {
	t.mu.Lock()
	t.mu.m = make(map[K]*polEntry)
	t.mu.Unlock()
}

// evictLocked makes room for one entry by dropping an eighth of the
// loaded ones (map order is random enough).
func (t *polTable[K]) evictLocked() {
	if len(t.mu.m) < t.max {
		return
	}
	n := max(t.max/8, 1)
	for k, e := range t.mu.m {
		select {
		case <-e.ready:
			delete(t.mu.m, k)
			n--
		default:
		}
		if n == 0 {
			return
		}
	}
}

// policyCache holds the namespace, topic and tenant tables and their
// watches. Tenant rows are cached for their admin roles only
// (authorization, authz.go).
type policyCache struct {
	b       *Broker
	ns      *polTable[catalog.NamespaceName]
	topics  *polTable[catalog.TopicName]
	tenants *polTable[string]
}

func newPolicyCache(b *Broker) *policyCache {
	c := &policyCache{b: b}
	c.ns = newPolTable(maxCachedNamespaces, func(ctx context.Context, n catalog.NamespaceName) (polEntry, error) {
		e, ok, err := b.cat.Namespaces.Get(ctx, n)
		if err != nil || !ok {
			return polEntry{}, wrapMeta("load namespace policies", err)
		}
		return namespaceEntry(e.ModRevision, e.Value), nil
	})
	c.topics = newPolTable(maxCachedTopicPolicies, func(ctx context.Context, n catalog.TopicName) (polEntry, error) {
		e, ok, err := b.cat.Topics.Get(ctx, n)
		if err != nil || !ok {
			return polEntry{}, wrapMeta("load topic policies", err)
		}
		return topicEntry(e.ModRevision, e.Value), nil
	})
	c.tenants = newPolTable(maxCachedNamespaces, func(ctx context.Context, n string) (polEntry, error) {
		e, ok, err := b.cat.Tenants.Get(ctx, n)
		if err != nil || !ok {
			return polEntry{}, wrapMeta("load tenant", err)
		}
		return tenantEntry(e.ModRevision, e.Value), nil
	})
	return c
}

func namespaceEntry(rev int64, v *catalogpb.Namespace) polEntry {
	return polEntry{rev: rev, exists: true, pol: v.Policies, grants: v.Permissions}
}

func topicEntry(rev int64, v *catalogpb.Topic) polEntry {
	return polEntry{rev: rev, exists: true, pol: v.Policies, grants: v.Permissions}
}

func tenantEntry(rev int64, v *catalogpb.Tenant) polEntry {
	grants := make(map[string]uint32, len(v.AdminRoles))
	for _, r := range v.AdminRoles {
		grants[r] = uint32(ActionAll)
	}
	return polEntry{rev: rev, exists: true, grants: grants}
}

// start runs the two watches until the broker stops.
func (c *policyCache) start() {
	ctx, cancel := context.WithCancel(context.Background())
	b := c.b
	b.wg.Add(4)
	go func() {
		defer b.wg.Done()
		defer cancel()
		select {
		case <-b.stop:
		case <-ctx.Done():
		}
	}()
	go func() {
		defer b.wg.Done()
		c.watch(ctx, b.cat.Namespaces.Prefix(), c.ns.reset, func(ev metadata.Event) {
			n, ok := b.cat.Namespaces.ParseKey(ev.KV.Key)
			if !ok {
				return
			}
			c.ns.update(n, c.entryOf(ev, func(kv metadata.KV) (polEntry, error) {
				e, _, err := b.cat.Namespaces.Decode(kv)
				if err != nil {
					return polEntry{}, err
				}
				return namespaceEntry(kv.ModRevision, e.Value), nil
			}))
		})
	}()
	go func() {
		defer b.wg.Done()
		c.watch(ctx, b.cat.Topics.Prefix(), c.topics.reset, func(ev metadata.Event) {
			n, ok := b.cat.Topics.ParseKey(ev.KV.Key)
			if !ok {
				return
			}
			c.topics.update(n, c.entryOf(ev, func(kv metadata.KV) (polEntry, error) {
				e, _, err := b.cat.Topics.Decode(kv)
				if err != nil {
					return polEntry{}, err
				}
				return topicEntry(kv.ModRevision, e.Value), nil
			}))
		})
	}()
	go func() {
		defer b.wg.Done()
		c.watch(ctx, b.cat.Tenants.Prefix(), c.tenants.reset, func(ev metadata.Event) {
			n, ok := b.cat.Tenants.ParseKey(ev.KV.Key)
			if !ok {
				return
			}
			c.tenants.update(n, c.entryOf(ev, func(kv metadata.KV) (polEntry, error) {
				e, _, err := b.cat.Tenants.Decode(kv)
				if err != nil {
					return polEntry{}, err
				}
				return tenantEntry(kv.ModRevision, e.Value), nil
			}))
		})
	}()
}

// entryOf turns a watch event into a cache entry. A row that does not
// decode is cached as an error, so its next use reloads it.
func (c *policyCache) entryOf(ev metadata.Event, decode func(metadata.KV) (polEntry, error)) polEntry {
	if ev.Type == metadata.EventDelete {
		return polEntry{rev: ev.KV.ModRevision}
	}
	e, err := decode(ev.KV)
	if err != nil {
		c.b.log.Warn("policy cache: undecodable row", "key", ev.KV.Key, "err", err)
		return polEntry{rev: ev.KV.ModRevision, err: err}
	}
	return e
}

// watch follows the rows under prefix until ctx ends, resuming a broken
// watch from the last revision seen. Whenever it (re)starts without the
// history since the last event, it empties the cache (reset) once the new
// watch is in place, since entries loaded meanwhile may have missed
// changes.
func (c *policyCache) watch(ctx context.Context, prefix string, reset func(), apply func(metadata.Event)) {
	store := c.b.cat.Store()
	var from int64 // the revision to resume after
	fresh := true  // no watch yet, or its history is gone
	backoff := 50 * time.Millisecond
	wait := func() bool {
		t := time.NewTimer(backoff)
		defer t.Stop()
		backoff = min(2*backoff, 5*time.Second)
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for ctx.Err() == nil {
		if fresh {
			r, err := store.Range(ctx, prefix, metadata.RangeOptions{Limit: 1})
			if err != nil {
				if ctx.Err() == nil {
					c.b.log.Warn("policy watch: reading the revision", "prefix", prefix, "err", err)
				}
				if !wait() {
					return
				}
				continue
			}
			from = r.Revision
		}
		ch, err := store.Watch(ctx, prefix, from)
		if errors.Is(err, metadata.ErrCompacted) {
			fresh = true
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				c.b.log.Warn("policy watch", "prefix", prefix, "err", err)
			}
			if !wait() {
				return
			}
			continue
		}
		if fresh {
			reset()
			fresh = false
		}
		backoff = 50 * time.Millisecond
		for ev := range ch {
			apply(ev)
			// Resume one revision early: a Txn's events share a revision,
			// and applying an event twice changes nothing.
			from = max(from, ev.KV.ModRevision-1)
		}
	}
}

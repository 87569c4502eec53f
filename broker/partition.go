package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/internal/record"
	"github.com/magnetar-mq/magnetar/metadata"
	"github.com/magnetar-mq/magnetar/metadata/catalog"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

const (
	// maxGroupBytes caps how much the append loop puts in one segment-store
	// append (one Raft entry).
	maxGroupBytes = 4 << 20
	// appendQueue is how many produce requests may wait for the append loop.
	appendQueue = 1024
)

// partition is one loaded partition: the broker owns it for as long as it
// is loaded. A single goroutine (run) assigns offsets and appends; readers
// and subscriptions share the rest under mu.
type partition struct {
	b     *Broker
	name  TopicName
	index int32
	pname catalog.PartitionName
	epoch uint64
	log   *slog.Logger

	appendCh chan *appendReq // closed by close, once no publisher can send
	ctl      chan ctlReq     // work the run goroutine does between appends (retention.go)
	ctx      context.Context // for segment-store calls; canceled once run returns
	cancel   context.CancelFunc
	done     chan struct{} // closed when run returns

	// sendMu makes closing appendCh safe: publishers send under the read
	// lock after checking stopped; close sets stopped under the write lock.
	sendMu  sync.RWMutex
	stopped bool

	closeOnce sync.Once
	closeErr  error

	lastUsed atomic.Int64 // unix nanoseconds of the last partitionFor (lazy.go)

	producers producerAccess // native producers attached (producers.go)
	seqs      producerSeqs   // idempotent producers' sequences (dedup.go)

	// Owned by the run goroutine.
	assignNext int64
	// openStore is the shard of the open segment, the last of the row; nil
	// until the next append opens one (openNext), after a load or a roll.
	openStore  bookie.Client
	openedAt   time.Time // when the open segment was opened (roll by age)
	lastAppend time.Time // when the last group was appended
	storeFull  bool      // the last group was refused for a full disk (opensegment.go)

	mu struct {
		sync.Mutex
		meta        *catalogpb.Partition // its last segment is the open one
		metaVersion int64
		next        int64 // one past the last durable offset
		openBytes   int64 // bytes in the open segment
		cache       tailCache
		changed     chan struct{} // closed and replaced when next moves
		subs        map[string]*subscription
		failed      error
	}
}

// appendReq is one produced batch waiting for its offsets.
type appendReq struct {
	batch []byte // RecordBatch v2; its base offset is set by the run loop
	count int64
	// after is the same idempotent producer's batch queued before this
	// one, if any: should it fail, this one fails too, unstored, so a
	// producer's batches are stored in sequence or not at all. The run
	// loop clears it once checked, so requests do not chain in memory.
	after *appendReq
	done  chan struct{}
	base  int64
	err   error
}

// Future is the outcome of an asynchronous publish.
type Future struct{ req *appendReq }

// Done is closed once the publish has succeeded or failed.
func (f Future) Done() <-chan struct{} { return f.req.done }

// Result returns the base offset of the published batch, or the error.
// Call it after Done is closed.
func (f Future) Result() (int64, error) { return f.req.base, f.req.err }

// Wait waits for the outcome.
func (f Future) Wait(ctx context.Context) (int64, error) {
	select {
	case <-f.req.done:
		return f.Result()
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// loadPartition takes ownership of a partition: it raises the partition's
// epoch in the metadata store and seals the previous owner's open segment
// on the segment store (fencing it). It writes nothing else to the segment
// store: the first append opens a new segment (openNext), so a partition
// loads, and is read, while its shard refuses new data (a full disk).
func (b *Broker) loadPartition(ctx context.Context, name TopicName, index int32) (*partition, error) {
	info, err := b.Topic(ctx, name, false)
	if err != nil {
		return nil, err
	}
	if index < 0 || index >= info.Partitions {
		return nil, fmt.Errorf("%w: %s has %d partitions, asked for %d", ErrPartitionNotFound, name, info.Partitions, index)
	}
	pn := partitionName(name, index)
	pm, version, err := b.claimPartition(ctx, pn)
	if err != nil {
		return nil, err
	}
	// Seal what the previous owner left open. Sealing with our epoch fences
	// it: its appends fail from now on, and the end offset is final.
	if n := len(pm.Segments); n > 0 && pm.Segments[n-1].State == catalogpb.SegmentState_SEGMENT_OPEN {
		last := pm.Segments[n-1]
		store, err := b.segmentStore(ctx, last)
		if err != nil {
			return nil, err
		}
		si, err := store.Seal(ctx, last.Id, pm.Epoch, last.StartOffset)
		if err != nil {
			return nil, fmt.Errorf("broker: sealing segment %d of %s-%d: %w", last.Id, name, index, err)
		}
		last.State = catalogpb.SegmentState_SEGMENT_SEALED
		last.EndOffset = si.NextOffset
		last.Bytes = si.Bytes
		last.SealedUnixMs = time.Now().UnixMilli()
		// An empty segment is dropped, unless it is the only one: the last
		// segment records where the offsets go on (retention may have
		// deleted the others) until the next one opens.
		empty := last.EndOffset == last.StartOffset && n > 1
		if empty {
			pm.Segments = pm.Segments[:n-1]
		}
		if version, err = b.putPartitionMeta(ctx, pn, pm, version); err != nil {
			if errors.Is(err, catalog.ErrConflict) {
				// Another broker claimed the partition since.
				return nil, b.claimedErr(name, index, err)
			}
			return nil, err
		}
		if empty {
			if err := store.DeleteSegment(ctx, last.Id); err != nil && !errors.Is(err, bookie.ErrSegmentNotFound) {
				b.log.Warn("deleting empty segment", "segment", last.Id, "err", err)
			}
		}
	}
	next := int64(0)
	if n := len(pm.Segments); n > 0 {
		next = pm.Segments[n-1].EndOffset
	}
	pctx, cancel := context.WithCancel(context.Background())
	p := &partition{
		b:          b,
		name:       name,
		index:      index,
		pname:      pn,
		epoch:      pm.Epoch,
		log:        b.log.With("topic", name.String(), "partition", index),
		appendCh:   make(chan *appendReq, appendQueue),
		ctl:        make(chan ctlReq),
		ctx:        pctx,
		cancel:     cancel,
		done:       make(chan struct{}),
		assignNext: next,
	}
	p.mu.meta = pm
	p.mu.metaVersion = version
	p.mu.next = next
	p.mu.cache = tailCache{maxBytes: b.cfg.TailCacheBytes}
	p.mu.changed = make(chan struct{})
	p.mu.subs = make(map[string]*subscription)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		p.run()
	}()
	b.metrics.partitionsLoaded.Inc()
	p.log.Info("partition loaded", "epoch", pm.Epoch, "next_offset", next, "segments", len(pm.Segments))
	return p, nil
}

// claimPartition raises the partition's epoch with a compare-and-swap, so
// any other broker that still thinks it owns the partition fails its next
// metadata update.
func (b *Broker) claimPartition(ctx context.Context, pn catalog.PartitionName) (*catalogpb.Partition, int64, error) {
	for {
		e, ok, err := b.cat.Partitions.Get(ctx, pn)
		if err != nil {
			return nil, 0, wrapMeta("load partition", err)
		}
		pm := &catalogpb.Partition{}
		var version int64
		if ok {
			pm, version = e.Value, e.Version
		}
		pm.Epoch++
		nv, err := b.putPartitionMeta(ctx, pn, pm, version)
		if errors.Is(err, catalog.ErrConflict) || errors.Is(err, catalog.ErrExists) || errors.Is(err, catalog.ErrNotFound) {
			continue // another broker moved it (or deleted it) since we read it
		}
		if errors.Is(err, metadata.ErrUnknownOutcome) && ctx.Err() == nil {
			// The metadata leader did not answer in time (paused, or an
			// election): read the row again, with whatever the write did,
			// and claim it again; the client has found the next leader.
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		return pm, nv, nil
	}
}

// putMeta writes pm as the partition's row, if the row is still at
// version (compare-and-swap), and keeps it as the loaded partition's.
func (p *partition) putMeta(pm *catalogpb.Partition, version int64) error {
	version, err := p.b.putPartitionMeta(p.ctx, p.pname, pm, version)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.mu.meta = pm
	p.mu.metaVersion = version
	p.mu.Unlock()
	return nil
}

// putPartitionMeta writes the partition row with compare-and-swap: creates
// it when version is 0, else updates it from that version. It returns the
// new version.
func (b *Broker) putPartitionMeta(ctx context.Context, pn catalog.PartitionName, pm *catalogpb.Partition, version int64) (int64, error) {
	var nv int64
	var err error
	if version == 0 {
		nv, err = b.cat.Partitions.Create(ctx, pn, pm)
	} else {
		nv, err = b.cat.Partitions.Update(ctx, pn, pm, version)
	}
	return nv, wrapMeta("update partition", err)
}

// publish queues a batch for appending, after the batch of the same
// producer queued before it (nil: none; see appendReq.after).
func (p *partition) publish(ctx context.Context, batch []byte, count int64, after *appendReq) (Future, error) {
	if err := p.b.throttlePublish(ctx, p.name, len(batch), count); err != nil {
		return Future{}, err // only when ctx ended or the broker closed while throttled
	}
	if err := p.b.checkBacklogQuota(ctx, p); err != nil {
		return Future{}, err // quota exceeded (producer_exception), or ctx ended while held
	}
	p.sendMu.RLock()
	defer p.sendMu.RUnlock()
	if p.stopped {
		return Future{}, p.closedErr()
	}
	if err := p.failedErr(); err != nil {
		return Future{}, err
	}
	req := &appendReq{batch: batch, count: count, after: after, done: make(chan struct{})}
	select {
	case p.appendCh <- req:
		return Future{req}, nil
	case <-ctx.Done():
		return Future{}, ctx.Err()
	}
}

func (p *partition) closedErr() error {
	if err := p.failedErr(); err != nil {
		return err
	}
	return ErrClosed
}

func (p *partition) failedErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.failed
}

// run is the append loop: it takes every request waiting, gives them
// consecutive offsets and appends them as one segment-store call, so
// concurrent producers share one Raft entry and one fsync (group commit).
// It returns once appendCh is closed and drained; what was queued before a
// graceful close is still appended.
func (p *partition) run() {
	defer close(p.done)
	group := make([]*appendReq, 0, 64)
loop:
	for {
		var req *appendReq
		select {
		case r, ok := <-p.appendCh:
			if !ok {
				return
			}
			req = r
		case c := <-p.ctl:
			err := c.fn()
			c.done <- err
			if err != nil {
				p.fail(err)
				break loop
			}
			continue
		}
		group = append(group[:0], req)
		size := len(req.batch)
	drain:
		for size < maxGroupBytes {
			select {
			case r, ok := <-p.appendCh:
				if !ok {
					break drain
				}
				group = append(group, r)
				size += len(r.batch)
			default:
				break drain
			}
		}
		if err := p.appendGroup(group, size); err != nil {
			p.fail(err)
			break loop
		}
	}
	// After a failure, refuse whatever is still sent until close.
	for r := range p.appendCh {
		r.err = p.failedErr()
		close(r.done)
	}
}

// fail marks the partition unusable after an error whose outcome on the
// segment store is unknown or that means we lost ownership. The next use
// reloads it, which seals the segment at what was really stored.
func (p *partition) fail(err error) {
	p.log.Warn("partition failed; it will be reloaded on next use", "err", err)
	p.mu.Lock()
	if p.mu.failed == nil {
		p.mu.failed = fmt.Errorf("%w: %w", ErrPartitionFailed, err)
	}
	close(p.mu.changed)
	p.mu.changed = make(chan struct{})
	p.mu.Unlock()
	p.b.wg.Add(1)
	go func() {
		defer p.b.wg.Done()
		p.b.unload(p)
	}()
}

func (p *partition) appendGroup(group []*appendReq, size int) error {
	start := time.Now()
	if group, size = p.dropOrphans(group, size); len(group) == 0 {
		return nil
	}
	if p.openStore == nil {
		if err := p.openNext(); err != nil {
			return p.refuse(group, err)
		}
	}
	base := p.assignNext
	entries := make([][]byte, len(group))
	for i, r := range group {
		record.SetBaseOffset(r.batch, p.assignNext)
		r.base = p.assignNext
		p.assignNext += r.count
		entries[i] = r.batch
	}
	p.mu.Lock()
	seg := p.mu.meta.Segments[len(p.mu.meta.Segments)-1]
	p.mu.Unlock()
	next, err := p.openStore.Append(p.ctx, bookie.AppendRequest{Segment: seg.Id, Epoch: p.epoch, Entries: entries})
	if err == nil && next != p.assignNext {
		err = fmt.Errorf("broker: segment store returned next offset %d, expected %d", next, p.assignNext)
	}
	if errors.Is(err, bookie.ErrDiskFull) {
		p.assignNext = base // nothing was stored: the offsets go to the next group
	}
	if err != nil {
		return p.refuse(group, err)
	}
	if p.storeFull {
		p.storeFull = false
		p.log.Info("appends resumed: the segment store has room again")
	}
	p.b.metrics.appendLatency.Observe(time.Since(start).Seconds())
	p.b.metrics.bytesIn.Add(float64(size))

	p.mu.Lock()
	var msgs int64
	for _, r := range group {
		p.mu.cache.add(bookie.Entry{BaseOffset: r.base, LastOffset: r.base + r.count - 1, Data: r.batch})
		msgs += r.count
		r.batch = nil // a Future kept for producer retries must not pin the bytes
	}
	p.mu.next = next
	p.mu.openBytes += int64(size)
	p.lastAppend = time.Now()
	roll := p.mu.openBytes >= p.b.cfg.SegmentMaxBytes || p.openTooOld(p.lastAppend)
	close(p.mu.changed)
	p.mu.changed = make(chan struct{})
	p.mu.Unlock()
	p.b.metrics.messagesIn.Add(float64(msgs))
	for _, r := range group {
		close(r.done)
	}
	if roll {
		return p.roll()
	}
	return nil
}

// dropOrphans fails, unstored, every request of the group whose producer's
// previous batch failed (it was in an earlier group, so its outcome is
// known; one in this group shares this group's), and returns the rest and
// their size. A producer's batches are checked against the ones it queued
// before (dedup.go), so one stored after a refused one would leave a gap
// in its sequence that its retry of the refused one would be taken for a
// duplicate of.
func (p *partition) dropOrphans(group []*appendReq, size int) ([]*appendReq, int) {
	kept := group[:0]
	for _, r := range group {
		prev := r.after
		r.after = nil
		if prev != nil {
			select {
			case <-prev.done:
				if prev.err != nil {
					size -= len(r.batch)
					r.err, r.batch = fmt.Errorf("%w (the producer's batch before it failed)", prev.err), nil
					close(r.done)
					continue
				}
			default:
			}
		}
		kept = append(kept, r)
	}
	return kept, size
}

// roll seals the open segment; the next append opens the next one
// (openNext), which the segment store may place on another shard.
func (p *partition) roll() error {
	p.mu.Lock()
	pm := proto.Clone(p.mu.meta).(*catalogpb.Partition)
	version := p.mu.metaVersion
	p.mu.Unlock()
	last := pm.Segments[len(pm.Segments)-1]
	si, err := p.openStore.Seal(p.ctx, last.Id, p.epoch, last.StartOffset)
	if err != nil {
		return fmt.Errorf("broker: rolling segment %d: %w", last.Id, err)
	}
	now := time.Now()
	last.State = catalogpb.SegmentState_SEGMENT_SEALED
	last.EndOffset = si.NextOffset
	last.Bytes = si.Bytes
	last.SealedUnixMs = now.UnixMilli()
	last.LastAppendUnixMs = last.SealedUnixMs
	if !p.lastAppend.IsZero() {
		last.LastAppendUnixMs = p.lastAppend.UnixMilli()
	}
	if err := p.putMeta(pm, version); err != nil {
		return err
	}
	p.openStore = nil
	p.mu.Lock()
	p.mu.openBytes = 0
	p.mu.Unlock()
	p.log.Debug("segment rolled", "sealed", last.Id, "end_offset", last.EndOffset)
	return nil
}

// read returns stored batches holding offsets at or after from, up to
// about maxBytes, waiting until at least one exists. The first batch may
// start before from.
func (p *partition) read(ctx context.Context, from int64, maxBytes int) ([]bookie.Entry, error) {
	for {
		p.mu.Lock()
		if err := p.mu.failed; err != nil {
			p.mu.Unlock()
			return nil, err
		}
		if from < p.mu.next {
			if entries := p.mu.cache.read(from, maxBytes); entries != nil {
				p.mu.Unlock()
				p.b.metrics.readsCache.Inc()
				return entries, nil
			}
			seg := p.segmentForLocked(from)
			p.mu.Unlock()
			if seg == nil {
				return nil, fmt.Errorf("broker: no segment holds offset %d of %s-%d", from, p.name, p.index)
			}
			store, err := p.b.segmentStore(ctx, seg)
			if err != nil {
				return nil, err
			}
			entries, err := store.Read(ctx, seg.Id, from, maxBytes)
			if err != nil && p.trimmedPast(seg) {
				continue // retention deleted it meanwhile: read from the new start
			}
			if err != nil {
				return nil, fmt.Errorf("broker: reading segment %d: %w", seg.Id, err)
			}
			p.b.metrics.readsStore.Inc()
			if len(entries) > 0 {
				return entries, nil
			}
			// A sealed segment ends before from: go on with the next one.
			from = max(from, seg.EndOffset)
			continue
		}
		changed := p.mu.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-p.ctx.Done():
			return nil, p.closedErr()
		}
	}
}

// segmentForLocked returns the segment holding offset, or the first one
// after it.
func (p *partition) segmentForLocked(offset int64) *catalogpb.Segment {
	segs := p.mu.meta.Segments
	i := sort.Search(len(segs), func(i int) bool { return segs[i].StartOffset > offset })
	if i == 0 {
		if len(segs) == 0 {
			return nil
		}
		return segs[0]
	}
	return segs[i-1]
}

func (p *partition) startOffsetLocked() int64 {
	if segs := p.mu.meta.Segments; len(segs) > 0 {
		return segs[0].StartOffset
	}
	return p.mu.next
}

func (p *partition) stats(ctx context.Context) (PartitionStats, []SubscriptionStats, error) {
	p.mu.Lock()
	ps := PartitionStats{
		Partition:   p.index,
		StartOffset: p.startOffsetLocked(),
		EndOffset:   p.mu.next,
		Segments:    len(p.mu.meta.Segments),
		Bytes:       p.mu.openBytes,
	}
	for _, s := range p.mu.meta.Segments {
		ps.Bytes += s.Bytes
	}
	p.mu.Unlock()
	subs, err := p.subscriptionStats(ctx, ps.EndOffset)
	return ps, subs, err
}

// close stops the append loop (failing what is still queued), disconnects
// consumers and persists the cursors.
// It is safe to call more than once.
func (p *partition) close() error {
	p.closeOnce.Do(func() {
		p.sendMu.Lock()
		p.stopped = true
		p.sendMu.Unlock()
		close(p.appendCh)
		<-p.done
		p.cancel() // wakes readers
		p.mu.Lock()
		// Wakes long polls (Kafka fetches) waiting on this partition: it is
		// unloaded (its topic deleted, or the broker closing), and their next
		// read finds out. The append loop is done, so nothing closes it again.
		close(p.mu.changed)
		subs := make([]*subscription, 0, len(p.mu.subs))
		for _, s := range p.mu.subs {
			subs = append(subs, s)
		}
		p.mu.Unlock()
		for _, s := range subs {
			s.disconnect(nil)
		}
		ctx, cancel := context.WithTimeout(context.Background(), defaultFlushTimeout)
		defer cancel()
		p.b.metrics.partitionsLoaded.Dec()
		p.closeErr = p.flushCursors(ctx)
	})
	return p.closeErr
}

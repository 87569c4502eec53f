package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/internal/record"
	"github.com/magnetar-mq/magnetar/metadata/catalog"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

// The policy loop applies the policies that act on stored data to every
// loaded partition, every Config.PolicyCheckInterval, in this order:
//
//  1. Roll by age: an open segment older than Config.SegmentMaxAge that
//     holds data is sealed and a new one opened (retention only deletes
//     sealed segments). A partition that appends also rolls by age at its
//     next append.
//  2. Message TTL: on every durable subscription, the batches whose newest
//     record timestamp is older than MessageTTL are acknowledged (the
//     cursor moves forward, never back; consumers stay attached).
//  3. Backlog quota, consumer_backlog_eviction: a subscription whose
//     backlog is above BacklogQuotaBytes has its cursor moved forward until
//     it is not (its oldest messages are dropped for it). The other two
//     actions act at publish time (backlog.go).
//  4. Retention: the oldest sealed segments are deleted, while (a) every
//     durable subscription's cursor is at or past the segment's end, and
//     (b) retention allows it: the segment's last append is older than
//     RetentionTime, or the partition keeps at least RetentionBytes newer
//     than the segment without it (Pulsar's rule: a segment goes once
//     either limit is exceeded; -1 disables a limit, both -1 keep
//     everything). A partition without durable subscriptions keeps data
//     by retention alone. The open segment is never deleted.
//
// Deleting a segment removes it from the partition row first (a
// compare-and-swap done on the partition's run goroutine, which is the
// only writer of that row while the partition is loaded) and then from
// its shard. Offsets are never reused: the partition's start offset moves
// up to the first remaining segment; Kafka fetches below it get
// OFFSET_OUT_OF_RANGE with the new log start, and a reader or a
// subscription positioned below it reads from the new start.
//
// There is no object-store tier yet (tiered/ is a stub), so no segment is
// ever SEGMENT_OFFLOADED; once there is, an offloaded segment follows the
// same rule and its objects must be deleted too.

// errCursorGone: a listed cursor was deleted before it was loaded.
var errCursorGone = errors.New("broker: cursor deleted")

// policyPassTimeout bounds one pass of the policy loop.
const policyPassTimeout = time.Minute

// ctlReq is work for a partition's run goroutine (partition.go), done
// between appends so it never races the append path's segment changes.
type ctlReq struct {
	fn   func() error // an error fails the partition, like a failed append
	done chan error   // buffered: fn's result
}

// do runs fn on the partition's run goroutine and returns its error.
func (p *partition) do(ctx context.Context, fn func() error) error {
	req := ctlReq{fn: fn, done: make(chan error, 1)}
	select {
	case p.ctl <- req:
	case <-p.done:
		return p.closedErr()
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// openTooOld reports whether the open segment is past Config.SegmentMaxAge
// at now. Run goroutine only.
func (p *partition) openTooOld(now time.Time) bool {
	return p.b.cfg.SegmentMaxAge > 0 && now.Sub(p.openedAt) >= p.b.cfg.SegmentMaxAge
}

// trimmedPast reports whether seg was deleted by retention: it starts
// before the partition's first segment.
func (p *partition) trimmedPast(seg *catalogpb.Segment) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	segs := p.mu.meta.Segments
	return len(segs) > 0 && seg.StartOffset < segs[0].StartOffset
}

// policyLoop runs EnforcePolicies every PolicyCheckInterval until Close.
func (b *Broker) policyLoop() {
	t := time.NewTicker(b.cfg.PolicyCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), policyPassTimeout)
		b.EnforcePolicies(ctx)
		cancel()
	}
}

// EnforcePolicies applies roll by age, message TTL, backlog-quota
// eviction and retention to every loaded partition once (the policy loop
// calls it every Config.PolicyCheckInterval). Failures are logged; the
// next pass tries again.
func (b *Broker) EnforcePolicies(ctx context.Context) {
	for _, p := range b.loadedPartitions() {
		select {
		case <-b.stop:
			return
		default:
		}
		if err := p.enforce(ctx, time.Now()); err != nil && !errors.Is(err, ErrClosed) {
			p.log.Warn("applying retention, TTL and backlog quota", "err", err)
		}
	}
}

// enforce is one pass of the policy loop on one partition.
func (p *partition) enforce(ctx context.Context, now time.Time) error {
	pol, err := p.b.EffectivePolicies(ctx, p.name)
	if err != nil {
		return err
	}
	if err := p.rollIfOld(ctx); err != nil {
		return err
	}
	subs, err := p.durableSubscriptions(ctx)
	if err != nil {
		return err
	}
	if pol.MessageTTL > 0 {
		if err := p.expireTTL(ctx, subs, now.Add(-pol.MessageTTL)); err != nil {
			return err
		}
	}
	if pol.BacklogQuotaBytes >= 0 && pol.BacklogQuotaAction == catalogpb.BacklogQuotaAction_BACKLOG_QUOTA_CONSUMER_BACKLOG_EVICTION {
		p.evictBacklog(subs, pol.BacklogQuotaBytes)
	}
	if err := p.flushCursors(ctx); err != nil {
		return err // retention goes by cursors that are durable
	}
	return p.applyRetention(ctx, subs, pol, now)
}

// rollIfOld rolls the open segment when it is past SegmentMaxAge and not
// empty.
func (p *partition) rollIfOld(ctx context.Context) error {
	if p.b.cfg.SegmentMaxAge <= 0 {
		return nil
	}
	return p.do(ctx, func() error {
		p.mu.Lock()
		empty := p.mu.openBytes == 0
		p.mu.Unlock()
		if empty || !p.openTooOld(time.Now()) {
			return nil
		}
		return p.roll()
	})
}

// durableSubscriptions returns every durable subscription of the
// partition, loading those that have a cursor in the metadata store but
// are not loaded yet.
func (p *partition) durableSubscriptions(ctx context.Context) ([]*subscription, error) {
	var out []*subscription
	var page catalog.Page
	for {
		l, err := p.b.cat.Cursors.List(ctx, p.pname, page)
		if err != nil {
			return nil, wrapMeta("list cursors", err)
		}
		for _, e := range l.Entries {
			// A cursor deleted since the listing (its subscription or topic
			// deleted) must not be created again.
			s, err := p.subscription(ctx, e.Name.Subscription, false, func(context.Context) (int64, error) { return 0, errCursorGone })
			if errors.Is(err, errCursorGone) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		if l.Next == "" {
			return out, nil
		}
		page.After = l.Next
	}
}

// expireTTL acknowledges, on every subscription, the batches published
// before cutoff (by their newest record's timestamp), without
// disconnecting consumers. The expired range is found once for the
// partition by scanning batch headers from the lowest cursor.
func (p *partition) expireTTL(ctx context.Context, subs []*subscription, cutoff time.Time) error {
	p.mu.Lock()
	end := p.mu.next
	p.mu.Unlock()
	from := end
	for _, s := range subs {
		s.mu.Lock()
		from = min(from, s.mu.next)
		s.mu.Unlock()
	}
	if from >= end {
		return nil
	}
	upTo, err := p.expiredUpTo(ctx, from, end, cutoff.UnixMilli())
	if err != nil {
		return err
	}
	var expired int64
	for _, s := range subs {
		expired += s.moveForward(upTo)
	}
	p.b.metrics.messagesExpired.Add(float64(expired))
	return nil
}

// expiredUpTo scans the batches from offset from on and returns the base
// offset of the first one holding a record at or after cutoffMs (end if
// none does).
func (p *partition) expiredUpTo(ctx context.Context, from, end, cutoffMs int64) (int64, error) {
	for next := from; next < end; {
		entries, err := p.read(ctx, next, maxReadBytes)
		if err != nil {
			return 0, err
		}
		if len(entries) == 0 {
			return next, nil
		}
		for _, e := range entries {
			if e.LastOffset < next {
				continue
			}
			h, err := record.ParseHeader(e.Data)
			if err != nil {
				return 0, fmt.Errorf("broker: stored batch at %d: %w", e.BaseOffset, err)
			}
			if !h.IsControl() && h.MaxTimestamp >= cutoffMs {
				return max(e.BaseOffset, next), nil
			}
			next = e.LastOffset + 1
		}
	}
	return end, nil
}

// moveForward acknowledges everything below off (ExpireMessages' cursor
// move, without closing the consumers: the dispatcher skips what is below
// the cursor, and pending deliveries below it are released). It returns
// how many messages that acknowledged.
func (s *subscription) moveForward(off int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if off <= s.mu.next || s.mu.deleted {
		return 0
	}
	before := s.backlogLocked(off)
	s.moveCursorLocked(off, false)
	return before
}

// applyRetention deletes the oldest sealed segments that every durable
// subscription is past and that retention no longer covers.
func (p *partition) applyRetention(ctx context.Context, subs []*subscription, pol EffectivePolicies, now time.Time) error {
	if pol.RetentionTime < 0 && pol.RetentionBytes < 0 {
		return nil // infinite retention
	}
	p.mu.Lock()
	minCursor := p.mu.next // no durable subscription: retention alone decides
	p.mu.Unlock()
	for _, s := range subs {
		s.mu.Lock()
		if !s.mu.deleted {
			minCursor = min(minCursor, s.mu.next)
		}
		s.mu.Unlock()
	}
	p.mu.Lock()
	victims := deletableSegments(p.mu.meta.Segments, p.mu.openBytes, minCursor, pol, now)
	p.mu.Unlock()
	if len(victims) == 0 {
		return nil
	}
	if err := p.do(ctx, func() error { return p.trimSegments(victims) }); err != nil {
		return err
	}
	for _, seg := range victims {
		store, err := p.b.segmentStore(ctx, seg)
		if err == nil {
			err = store.DeleteSegment(ctx, seg.Id)
		}
		if err != nil && !errors.Is(err, bookie.ErrSegmentNotFound) {
			// The row no longer names it: it is an orphan on its shard.
			p.log.Warn("retention: deleting a segment from its shard", "segment", seg.Id, "shard", seg.Shard, "err", err)
		}
	}
	p.b.metrics.segmentsDeleted.Add(float64(len(victims)))
	p.log.Info("retention deleted segments", "segments", len(victims),
		"start_offset", victims[len(victims)-1].EndOffset)
	return nil
}

// deletableSegments returns the prefix of segs (never the open one, nor
// the last one: while no segment is open, it records where the offsets go
// on) that retention may delete: segments entirely below minCursor whose
// last append is older than the retention time, or which the retention
// size no longer covers. openBytes is the open segment's size.
func deletableSegments(segs []*catalogpb.Segment, openBytes, minCursor int64, pol EffectivePolicies, now time.Time) []*catalogpb.Segment {
	total := openBytes
	for _, s := range segs {
		total += s.Bytes
	}
	var out []*catalogpb.Segment
	deleted := int64(0)
	for i, s := range segs {
		if s.State == catalogpb.SegmentState_SEGMENT_OPEN || s.EndOffset > minCursor || i == len(segs)-1 {
			break
		}
		expired := pol.RetentionTime >= 0 && now.Sub(segmentTime(s)) >= pol.RetentionTime
		overSize := pol.RetentionBytes >= 0 && total-deleted-s.Bytes >= pol.RetentionBytes
		if !expired && !overSize {
			break
		}
		deleted += s.Bytes
		out = append(out, s)
	}
	return out
}

// segmentTime is when a segment was last appended to as far as is known;
// a segment written before times were recorded counts as very old.
func segmentTime(s *catalogpb.Segment) time.Time {
	switch {
	case s.LastAppendUnixMs > 0:
		return time.UnixMilli(s.LastAppendUnixMs)
	case s.SealedUnixMs > 0:
		return time.UnixMilli(s.SealedUnixMs)
	}
	return time.Unix(0, 0)
}

// trimSegments removes victims, the first segments of the partition row,
// with a compare-and-swap. Run goroutine only.
func (p *partition) trimSegments(victims []*catalogpb.Segment) error {
	p.mu.Lock()
	pm := proto.Clone(p.mu.meta).(*catalogpb.Partition)
	version := p.mu.metaVersion
	p.mu.Unlock()
	if len(pm.Segments) <= len(victims) {
		return fmt.Errorf("broker: retention would delete the open segment of %s-%d", p.name, p.index)
	}
	for i, v := range victims {
		if pm.Segments[i].Id != v.Id {
			return fmt.Errorf("broker: retention: segment list of %s-%d changed under it", p.name, p.index)
		}
	}
	pm.Segments = pm.Segments[len(victims):]
	return p.putMeta(pm, version)
}

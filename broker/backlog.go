package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

// Backlog quotas (the backlog_quota_bytes and backlog_quota_action
// policies) cap how far behind a subscription may fall, in bytes. A
// subscription's backlog in bytes is estimated from segment sizes, not
// counted: the bytes of every segment between its cursor (the first
// unacknowledged offset) and the end, the segment holding the cursor
// counted pro rata of its offsets (sealed segments by their stored size,
// the open one by what this broker appended to it). Individually
// acknowledged messages above the cursor still count. The partition's
// backlog is its slowest durable subscription's; non-durable ones
// (readers) do not count. A durable subscription is counted once it is
// loaded: at its first use, or by the policy loop's next pass after the
// partition loads.
//
// The actions, as in Pulsar:
//   - producer_request_hold: a publish waits, outside every lock, until
//     the backlog is back under the quota (consumers acknowledge, TTL or
//     an admin skip moves the cursor), the caller's context ends, or the
//     partition closes. The backlog is checked again every
//     backlogHoldPoll.
//   - producer_exception: a publish fails at once with
//     ErrBacklogQuotaExceeded.
//   - consumer_backlog_eviction: publishes go on; the policy loop moves
//     the cursor of each subscription over the quota forward until its
//     backlog fits (its oldest messages are dropped).

// ErrBacklogQuotaExceeded fails a publish to a partition whose slowest
// subscription's backlog is over the backlog quota, when the quota's action
// is producer_exception.
var ErrBacklogQuotaExceeded = errors.New("broker: backlog quota exceeded")

// backlogHoldPoll is how often a held publish checks the backlog again.
const backlogHoldPoll = 50 * time.Millisecond

// checkBacklogQuota applies the partition's backlog quota to a publish: it
// returns at once when there is no quota or the backlog is under it, fails
// with ErrBacklogQuotaExceeded (producer_exception), or waits until the
// backlog shrinks (producer_request_hold). Without a quota it costs one
// cached policy lookup. If the policies cannot be read the publish goes on.
func (b *Broker) checkBacklogQuota(ctx context.Context, p *partition) error {
	held := false
	for {
		pol, err := b.EffectivePolicies(ctx, p.name)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return nil
		}
		if pol.BacklogQuotaBytes < 0 || pol.BacklogQuotaAction == catalogpb.BacklogQuotaAction_BACKLOG_QUOTA_CONSUMER_BACKLOG_EVICTION {
			return nil
		}
		backlog := p.backlogBytes()
		if backlog <= pol.BacklogQuotaBytes {
			return nil
		}
		if pol.BacklogQuotaAction == catalogpb.BacklogQuotaAction_BACKLOG_QUOTA_PRODUCER_EXCEPTION {
			b.metrics.publishesRefused.Inc()
			return fmt.Errorf("%w: %s-%d has a backlog of about %d bytes, the quota is %d", ErrBacklogQuotaExceeded, p.name, p.index, backlog, pol.BacklogQuotaBytes)
		}
		if !held {
			held = true
			b.metrics.publishesHeld.Inc()
		}
		t := time.NewTimer(backlogHoldPoll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-p.done:
			t.Stop()
			return p.closedErr()
		case <-b.stop:
			t.Stop()
			return ErrClosed
		}
	}
}

// backlogBytes estimates the backlog of the partition's slowest loaded
// durable subscription, in bytes (0 without one).
func (p *partition) backlogBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	from := p.mu.next
	for _, s := range p.mu.subs {
		if s.nonDurable {
			continue
		}
		s.mu.Lock()
		from = min(from, s.mu.next)
		s.mu.Unlock()
	}
	return p.bytesFromLocked(from)
}

// bytesFromLocked estimates the stored bytes from offset from to the end.
func (p *partition) bytesFromLocked(from int64) int64 {
	var n int64
	for _, s := range p.mu.meta.Segments {
		size, end := s.Bytes, s.EndOffset
		if s.State == catalogpb.SegmentState_SEGMENT_OPEN {
			size, end = p.mu.openBytes, p.mu.next
		}
		switch {
		case end <= from || end <= s.StartOffset:
		case from <= s.StartOffset:
			n += size
		default:
			n += size * (end - from) / (end - s.StartOffset)
		}
	}
	return n
}

// offsetForBacklogLocked returns the lowest offset from which the
// estimated bytes to the end are at most quota.
func (p *partition) offsetForBacklogLocked(quota int64) int64 {
	segs := p.mu.meta.Segments
	left := quota
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		size, end := s.Bytes, s.EndOffset
		if s.State == catalogpb.SegmentState_SEGMENT_OPEN {
			size, end = p.mu.openBytes, p.mu.next
		}
		if end <= s.StartOffset {
			continue
		}
		if size <= left {
			left -= size
			continue
		}
		// Part of this segment fits: the offsets whose share of its size
		// does, rounded so the estimate stays at or under the quota.
		fit := left * (end - s.StartOffset) / size
		return end - fit
	}
	if len(segs) > 0 {
		return segs[0].StartOffset
	}
	return p.mu.next
}

// evictBacklog moves the cursor of every subscription whose backlog is
// over quota forward until it fits (consumer_backlog_eviction), without
// disconnecting consumers.
func (p *partition) evictBacklog(subs []*subscription, quota int64) {
	p.mu.Lock()
	target := p.offsetForBacklogLocked(quota)
	p.mu.Unlock()
	var evicted int64
	for _, s := range subs {
		if n := s.moveForward(target); n > 0 {
			evicted += n
			p.log.Info("backlog quota: evicted the oldest messages of a subscription", "subscription", s.name, "messages", n, "quota_bytes", quota)
		}
	}
	p.b.metrics.messagesEvicted.Add(float64(evicted))
}

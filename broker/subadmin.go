package broker

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/magnetar-mq/magnetar/metadata/catalog"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

// Administration of subscriptions, and the internal state of partitions
// for operators (magctl subscriptions ..., magctl topics internal-stats).

// ErrSubscriptionExists fails a create of a durable subscription that
// already exists on the partition.
var ErrSubscriptionExists = errors.New("broker: subscription already exists")

// CreateSubscription creates durable subscription sub on a partition,
// starting at initial, or at *at when at is not nil (an offset, or the
// first message published at or after a time), and returns its cursor.
func (b *Broker) CreateSubscription(ctx context.Context, name TopicName, partition int32, sub string, initial InitialPosition, at *Position) (int64, error) {
	if err := b.CheckName(SubscriptionName, sub); err != nil {
		return 0, err
	}
	p, err := b.partitionFor(ctx, name, partition)
	if err != nil {
		return 0, err
	}
	p.mu.Lock()
	_, loaded := p.mu.subs[sub]
	p.mu.Unlock()
	_, stored, err := b.cat.Cursors.Get(ctx, catalog.CursorName{Partition: p.pname, Subscription: sub})
	if err != nil {
		return 0, wrapMeta("load cursor", err)
	}
	if loaded || stored {
		return 0, fmt.Errorf("%w: %s on %s-%d", ErrSubscriptionExists, sub, name, partition)
	}
	s, err := p.subscription(ctx, sub, false, p.startFor(SubscribeOptions{Initial: initial, Start: at}))
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.next, nil
}

// SegmentInternalStats is one segment of a partition as the partition row
// records it (the open one with what this broker has appended).
type SegmentInternalStats struct {
	ID    uint64 `json:"id"`
	State string `json:"state"` // open, sealed or offloaded
	// StartOffset is the first offset; EndOffset one past the last (for
	// the open segment: the partition's high watermark).
	StartOffset      int64  `json:"start_offset"`
	EndOffset        int64  `json:"end_offset"`
	Bytes            int64  `json:"bytes"`
	Shard            string `json:"shard"`
	Epoch            uint64 `json:"epoch"`
	CreatedUnixMs    int64  `json:"created_unix_ms,omitempty"`
	SealedUnixMs     int64  `json:"sealed_unix_ms,omitempty"`
	LastAppendUnixMs int64  `json:"last_append_unix_ms,omitempty"`
}

// OffsetRange is [Start, End).
type OffsetRange struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

// maxShownRanges is how many individually acknowledged ranges internal
// stats list per cursor.
const maxShownRanges = 10

// CursorInternalStats is one subscription's cursor and dispatcher state.
type CursorInternalStats struct {
	Name    string `json:"name"`
	Durable bool   `json:"durable"`
	// NextOffset: everything below is acknowledged.
	NextOffset int64 `json:"next_offset"`
	// AckedRanges counts the ranges acknowledged individually above
	// NextOffset; FirstAckedRanges lists the first few. Acked counts their
	// offsets, AckChunks the 65,536-offset chunks that hold them (one
	// metadata row each).
	AckedRanges      int           `json:"acked_ranges"`
	FirstAckedRanges []OffsetRange `json:"first_acked_ranges,omitempty"`
	Acked            int64         `json:"acked"`
	AckChunks        int           `json:"ack_chunks"`
	// Redeliveries counts the offsets with a redelivery count.
	Redeliveries int `json:"redeliveries"`
	// Backlog counts unacknowledged messages; BacklogBytes estimates
	// their size from segment sizes (see backlog.go).
	Backlog      int64 `json:"backlog"`
	BacklogBytes int64 `json:"backlog_bytes"`
	// Dispatcher state, while consumers are attached.
	Type      string `json:"type,omitempty"`
	Consumers int    `json:"consumers"`
	Pending   int    `json:"pending"`
	Delayed   int    `json:"delayed"`
}

// PartitionInternalStats is a partition's segments and cursors.
type PartitionInternalStats struct {
	Partition   int32                  `json:"partition"`
	Epoch       uint64                 `json:"epoch"`
	StartOffset int64                  `json:"start_offset"`
	EndOffset   int64                  `json:"end_offset"`
	Segments    []SegmentInternalStats `json:"segments"`
	Cursors     []CursorInternalStats  `json:"cursors"`
}

// TopicInternalStats is every partition's internal state.
type TopicInternalStats struct {
	Topic      string                   `json:"topic"`
	Partitions []PartitionInternalStats `json:"partitions"`
}

// InternalStats loads the topic's partitions and their durable
// subscriptions and reports their segments and cursors.
func (b *Broker) InternalStats(ctx context.Context, name TopicName) (TopicInternalStats, error) {
	info, err := b.Topic(ctx, name, false)
	if err != nil {
		return TopicInternalStats{}, err
	}
	out := TopicInternalStats{Topic: name.String()}
	for i := int32(0); i < info.Partitions; i++ {
		p, err := b.partitionFor(ctx, name, i)
		if err != nil {
			return TopicInternalStats{}, err
		}
		if _, err := p.durableSubscriptions(ctx); err != nil {
			return TopicInternalStats{}, err
		}
		out.Partitions = append(out.Partitions, p.internalStats())
	}
	return out, nil
}

var segmentStateNames = map[catalogpb.SegmentState]string{
	catalogpb.SegmentState_SEGMENT_OPEN:      "open",
	catalogpb.SegmentState_SEGMENT_SEALED:    "sealed",
	catalogpb.SegmentState_SEGMENT_OFFLOADED: "offloaded",
}

func (p *partition) internalStats() PartitionInternalStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := PartitionInternalStats{Partition: p.index, Epoch: p.epoch, StartOffset: p.startOffsetLocked(), EndOffset: p.mu.next}
	for _, s := range p.mu.meta.Segments {
		ss := SegmentInternalStats{ID: s.Id, State: segmentStateNames[s.State], StartOffset: s.StartOffset, EndOffset: s.EndOffset,
			Bytes: s.Bytes, Shard: s.Shard, Epoch: s.Epoch, CreatedUnixMs: s.CreatedUnixMs, SealedUnixMs: s.SealedUnixMs,
			LastAppendUnixMs: s.LastAppendUnixMs}
		if s.State == catalogpb.SegmentState_SEGMENT_OPEN {
			ss.EndOffset, ss.Bytes = p.mu.next, p.mu.openBytes
		}
		st.Segments = append(st.Segments, ss)
	}
	for _, s := range p.mu.subs {
		s.mu.Lock()
		c := CursorInternalStats{Name: s.name, Durable: !s.nonDurable, NextOffset: s.mu.next, Acked: s.mu.acks.len(),
			AckChunks: len(s.mu.acks.keys), Redeliveries: len(s.mu.redeliveries), Backlog: s.backlogLocked(p.mu.next)}
		for start, end := range s.mu.acks.runs() {
			c.AckedRanges++
			if len(c.FirstAckedRanges) < maxShownRanges {
				c.FirstAckedRanges = append(c.FirstAckedRanges, OffsetRange{Start: start, End: end})
			}
		}
		if d := s.mu.disp; d != nil {
			c.Type, c.Consumers, c.Pending, c.Delayed = d.typ.String(), len(d.consumers), len(d.pending), d.delayed
		}
		next := s.mu.next
		s.mu.Unlock()
		c.BacklogBytes = p.bytesFromLocked(next)
		st.Cursors = append(st.Cursors, c)
	}
	sort.Slice(st.Cursors, func(i, j int) bool { return st.Cursors[i].Name < st.Cursors[j].Name })
	return st
}

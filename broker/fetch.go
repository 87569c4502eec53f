package broker

import (
	"context"
	"fmt"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/internal/record"
)

// ReadResult is what ReadBatches found in a partition.
type ReadResult struct {
	// Batches are whole stored batches (RecordBatch v2 with their base
	// offsets set), in offset order. The first one holds the offset asked
	// for and may start before it. Their bytes are shared: do not modify.
	Batches []bookie.Entry
	// HighWatermark is one past the last durable offset; LogStart the
	// first retained one.
	HighWatermark int64
	LogStart      int64
	// Changed is closed when the high watermark next moves or the partition
	// fails or is unloaded, so a reader that found nothing can wait for new
	// data.
	Changed <-chan struct{}
}

// ReadBatches returns the stored batches of a partition from offset on, up
// to about maxBytes (at least one batch when there is one). It does not
// wait: at the high watermark it returns no batches and the Changed channel
// to wait on. An offset before the log start or past the high watermark is
// ErrOffsetOutOfRange; the result still carries both bounds.
func (b *Broker) ReadBatches(ctx context.Context, name TopicName, partition int32, offset int64, maxBytes int) (ReadResult, error) {
	p, err := b.partitionFor(ctx, name, partition)
	if err != nil {
		return ReadResult{}, err
	}
	p.mu.Lock()
	res := ReadResult{HighWatermark: p.mu.next, LogStart: p.startOffsetLocked(), Changed: p.mu.changed}
	failed := p.mu.failed
	p.mu.Unlock()
	if failed != nil {
		return res, failed
	}
	if offset < res.LogStart || offset > res.HighWatermark {
		return res, fmt.Errorf("%w: %d is outside [%d, %d] of %s-%d", ErrOffsetOutOfRange, offset, res.LogStart, res.HighWatermark, name, partition)
	}
	if offset == res.HighWatermark {
		return res, nil
	}
	// offset is below the high watermark, so read returns without waiting.
	res.Batches, err = p.read(ctx, offset, maxBytes)
	if err != nil {
		return res, err
	}
	return res, nil
}

// PartitionOffsets returns the first retained offset of a partition and its
// high watermark (one past the last durable offset).
func (b *Broker) PartitionOffsets(ctx context.Context, name TopicName, partition int32) (start, end int64, err error) {
	p, err := b.partitionFor(ctx, name, partition)
	if err != nil {
		return 0, 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.startOffsetLocked(), p.mu.next, nil
}

// Timestamp targets of OffsetForTimestamp with a special meaning (Kafka's
// ListOffsets values).
const (
	// MaxTimestamp finds the record with the largest timestamp.
	MaxTimestamp int64 = -3
)

// OffsetForTimestamp returns the offset and timestamp of the first record
// whose timestamp is at or after ts, or, with ts == MaxTimestamp, of the
// record with the largest timestamp (the first of equals). found is false
// when no record qualifies.
//
// It scans the partition's batches from the log start, skipping every batch
// whose max timestamp is below ts without decoding it: the cost is a read
// of the partition's headers, which is fine for the occasional ListOffsets
// but is no time index.
func (b *Broker) OffsetForTimestamp(ctx context.Context, name TopicName, partition int32, ts int64) (offset, timestamp int64, found bool, err error) {
	start, end, err := b.PartitionOffsets(ctx, name, partition)
	if err != nil {
		return 0, 0, false, err
	}
	best := struct {
		offset, ts int64
		found      bool
	}{}
	for next := start; next < end; {
		res, err := b.ReadBatches(ctx, name, partition, next, maxReadBytes)
		if err != nil {
			return 0, 0, false, err
		}
		if len(res.Batches) == 0 {
			break
		}
		for _, e := range res.Batches {
			if e.LastOffset < next {
				continue
			}
			next = e.LastOffset + 1
			h, err := record.ParseHeader(e.Data)
			if err != nil {
				return 0, 0, false, fmt.Errorf("broker: stored batch at %d: %w", e.BaseOffset, err)
			}
			if h.IsControl() || (ts != MaxTimestamp && h.MaxTimestamp < ts) || (ts == MaxTimestamp && best.found && h.MaxTimestamp <= best.ts) {
				continue
			}
			if h.TimestampType() == record.LogAppendTime {
				// Every record of the batch carries the batch's time.
				if ts == MaxTimestamp {
					best.offset, best.ts, best.found = h.BaseOffset, h.MaxTimestamp, true
					continue
				}
				return h.BaseOffset, h.MaxTimestamp, true, nil
			}
			var hit bool
			err = record.DecodeRecords(e.Data, func(r record.Record) error {
				switch {
				case hit:
				case ts == MaxTimestamp:
					if !best.found || r.Timestamp > best.ts {
						best.offset, best.ts, best.found = r.Offset, r.Timestamp, true
					}
				case r.Timestamp >= ts:
					offset, timestamp, hit = r.Offset, r.Timestamp, true
				}
				return nil
			})
			if err != nil {
				return 0, 0, false, fmt.Errorf("broker: stored batch at %d: %w", e.BaseOffset, err)
			}
			if hit {
				return offset, timestamp, true, nil
			}
		}
	}
	return best.offset, best.ts, best.found, nil
}

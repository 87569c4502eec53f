package broker

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/magnetar-mq/magnetar/internal/record"
)

// PublishAsync encodes records as one batch and queues it for the
// partition. The Future completes once the batch is durable (or failed);
// batches published on one partition are stored in the order they were
// queued.
func (b *Broker) PublishAsync(ctx context.Context, name TopicName, partition int32, records []record.Record) (Future, error) {
	return b.publishRecords(ctx, name, partition, nil, records)
}

// PublishSequencedAsync is PublishAsync for an idempotent native producer
// (from NewProducerID): sequence is the producer's number for the first
// record, one more than the last record it sent before (numbers may be
// skipped). A batch the partition has already stored under the same
// producer and sequence is not stored again: the Future is the first
// one's. A retry older than the producer's last recentBatches batches
// fails with ErrDuplicateSequence: it was stored, at an offset no longer
// known.
func (b *Broker) PublishSequencedAsync(ctx context.Context, name TopicName, partition int32, producerID int64, sequence uint64, records []record.Record) (Future, error) {
	if producerID < 0 {
		return Future{}, fmt.Errorf("%w: producer id %d", ErrInvalidArgument, producerID)
	}
	seq := int32(sequence % (math.MaxInt32 + 1)) // batch headers hold 31 bits, wrapping
	return b.publishRecords(ctx, name, partition, &record.Producer{ID: producerID, BaseSequence: seq}, records)
}

func (b *Broker) publishRecords(ctx context.Context, name TopicName, partition int32, producer *record.Producer, records []record.Record) (Future, error) {
	if len(records) == 0 {
		return Future{}, fmt.Errorf("%w: empty batch", ErrInvalidArgument)
	}
	// Refuse what cannot fit before encoding it: the records' bytes alone.
	if n := recordBytes(records); n > b.cfg.MaxMessageBytes {
		return Future{}, fmt.Errorf("%w: %d bytes of records, the limit is %d", ErrMessageTooLarge, n, b.cfg.MaxMessageBytes)
	}
	batch, err := record.AppendBatch(nil, record.BatchOptions{Producer: producer}, records)
	if err != nil {
		return Future{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	if len(batch) > b.cfg.MaxMessageBytes {
		return Future{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrMessageTooLarge, len(batch), b.cfg.MaxMessageBytes)
	}
	h, err := record.ParseHeader(batch)
	if err != nil {
		return Future{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return b.appendEncoded(ctx, name, partition, batch, h, increasingSeq)
}

// recordBytes is the size of the keys, values and headers of records, a
// lower bound of their encoded size.
func recordBytes(records []record.Record) int {
	n := 0
	for _, r := range records {
		n += len(r.Key) + len(r.Value)
		for _, h := range r.Headers {
			n += len(h.Key) + len(h.Value)
		}
	}
	return n
}

// appendEncoded queues a validated batch for the partition. A batch of an
// idempotent producer (h.ProducerID >= 0) is checked against the
// producer's sequence first (dedup.go).
func (b *Broker) appendEncoded(ctx context.Context, name TopicName, partition int32, batch []byte, h record.BatchHeader, mode sequencing) (Future, error) {
	for attempt := 0; ; attempt++ {
		var f Future
		p, err := b.partitionFor(ctx, name, partition)
		switch {
		case err != nil:
		case h.ProducerID >= 0:
			f, err = p.appendIdempotent(ctx, batch, h, mode)
		default:
			f, err = p.publish(ctx, batch, int64(h.LastOffsetDelta)+1, nil)
		}
		if errors.Is(err, ErrClosed) && !errors.Is(err, ErrPartitionFailed) {
			// The partition closed under the publish, which was not
			// stored, or its load lost the partition to another
			// broker's: its bundle moved (the client should go to the new
			// owner), or it was unloaded idle (load it again). An
			// idempotent producer's batch is not loaded again here: its
			// batches before it may still be undecided on the closed
			// partition, and it may not be stored before them. The
			// producer sends it again after them (ErrClosed is
			// UNAVAILABLE, LEADER_NOT_AVAILABLE).
			if err = b.movedErr(name, partition, err); errors.Is(err, ErrClosed) && h.ProducerID < 0 && attempt < 3 {
				continue
			}
		}
		return f, err
	}
}

// Publish is PublishAsync followed by waiting for the outcome; it returns
// the offset of the first record.
func (b *Broker) Publish(ctx context.Context, name TopicName, partition int32, records []record.Record) (int64, error) {
	f, err := b.PublishAsync(ctx, name, partition, records)
	if err != nil {
		return 0, err
	}
	return f.Wait(ctx)
}

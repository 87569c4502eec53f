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
// record, one more than the last record it sent before. A batch the
// partition has already stored under the same producer and sequence is
// not stored again: the Future is the first one's. A retry older than the
// producer's last recentBatches batches fails with ErrDuplicateSequence:
// it was stored, at an offset no longer known. A batch that does not
// follow the last one fails with ErrOutOfOrderSequence; a batch refused
// for good (too large, over the backlog quota) still counts, so the next
// one follows it, and is refused again if sent again.
func (b *Broker) PublishSequencedAsync(ctx context.Context, name TopicName, partition int32, producerID int64, sequence uint64, records []record.Record) (Future, error) {
	if producerID < 0 {
		return Future{}, fmt.Errorf("%w: producer id %d", ErrInvalidArgument, producerID)
	}
	seq := int32(sequence % (math.MaxInt32 + 1)) // batch headers hold 31 bits, wrapping
	producer := &record.Producer{ID: producerID, BaseSequence: seq}
	batch, h, err := b.encodeRecords(producer, records)
	if err != nil {
		if len(records) == 0 {
			return Future{}, err
		}
		// Refused for good before it could be queued: the producer's
		// sequence moves past it all the same.
		h = record.BatchHeader{ProducerID: producerID, BaseSequence: seq, LastOffsetDelta: int32(len(records) - 1)}
		return Future{}, b.refuseSequenced(ctx, name, partition, h, err)
	}
	return b.appendEncoded(ctx, name, partition, batch, h, nativeSeq)
}

func (b *Broker) publishRecords(ctx context.Context, name TopicName, partition int32, producer *record.Producer, records []record.Record) (Future, error) {
	batch, h, err := b.encodeRecords(producer, records)
	if err != nil {
		return Future{}, err
	}
	return b.appendEncoded(ctx, name, partition, batch, h, nativeSeq)
}

// encodeRecords encodes records as one batch, within MaxMessageBytes.
func (b *Broker) encodeRecords(producer *record.Producer, records []record.Record) ([]byte, record.BatchHeader, error) {
	if len(records) == 0 {
		return nil, record.BatchHeader{}, fmt.Errorf("%w: empty batch", ErrInvalidArgument)
	}
	// Refuse what cannot fit before encoding it: the records' bytes alone.
	if n := recordBytes(records); n > b.cfg.MaxMessageBytes {
		return nil, record.BatchHeader{}, fmt.Errorf("%w: %d bytes of records, the limit is %d", ErrMessageTooLarge, n, b.cfg.MaxMessageBytes)
	}
	batch, err := record.AppendBatch(nil, record.BatchOptions{Producer: producer}, records)
	if err != nil {
		return nil, record.BatchHeader{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	if len(batch) > b.cfg.MaxMessageBytes {
		return nil, record.BatchHeader{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrMessageTooLarge, len(batch), b.cfg.MaxMessageBytes)
	}
	h, err := record.ParseHeader(batch)
	if err != nil {
		return nil, record.BatchHeader{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return batch, h, nil
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

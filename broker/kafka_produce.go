package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/magnetar-mq/magnetar/internal/record"
	"github.com/magnetar-mq/magnetar/metadata/catalog"
)

// AppendBatch queues one RecordBatch v2 exactly as a producer encoded it
// (a Kafka produce request's record set) for the partition, and returns
// the Future of its append; the batch is stored as is, with only its base
// offset rewritten. The broker keeps batch: the caller must not touch it
// afterwards.
//
// The batch is validated here, once: it must be a single batch no larger
// than MaxMessageBytes, compressed or once decompressed (else
// ErrMessageTooLarge), with a good CRC, magic 2, records that decode and
// dense offset deltas (else ErrCorruptBatch). Control and transactional
// batches are refused (ErrInvalidArgument): transactions are not
// supported. Validating a compressed batch waits for its share of the
// decompression budget (validateBatch).
//
// A batch from an idempotent producer (producer ID >= 0) is checked against
// the producer's sequence on this partition: a retry of one of its last
// recentBatches batches gets that batch's Future again (so the retry learns the
// original offset and nothing is stored twice), an older one
// ErrDuplicateSequence, a gap ErrOutOfOrderSequence and an older producer
// epoch ErrInvalidProducerEpoch. A producer the partition does not know
// is accepted at any sequence, as Kafka does. The state is rebuilt from the
// log's tail after a partition moves or its broker restarts (dedup.go).
func (b *Broker) AppendBatch(ctx context.Context, name TopicName, partition int32, batch []byte) (Future, error) {
	if len(batch) > b.cfg.MaxMessageBytes {
		return Future{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrMessageTooLarge, len(batch), b.cfg.MaxMessageBytes)
	}
	h, err := b.validateBatch(ctx, batch)
	switch {
	case err != nil:
		return Future{}, err
	case h.Size() != len(batch):
		return Future{}, fmt.Errorf("%w: %d bytes after the batch", ErrCorruptBatch, len(batch)-h.Size())
	case h.IsControl():
		return Future{}, fmt.Errorf("%w: producers may not send control batches", ErrInvalidArgument)
	case h.IsTransactional():
		return Future{}, fmt.Errorf("%w: transactions are not supported", ErrInvalidArgument)
	}
	if h.ProducerID >= 0 {
		if err := b.CheckProducerID(ctx, h.ProducerID); err != nil {
			return Future{}, err
		}
	}
	return b.appendEncoded(ctx, name, partition, batch, h, kafkaSeq)
}

// validateBatch checks a produced batch (record.ValidateLimit), its
// records limited to MaxMessageBytes once decompressed. A compressed batch
// first takes MaxMessageBytes of the decompression budget, which bounds
// what every validation under way holds (a batch of a few kilobytes may
// hold megabytes): a burst of compressed batches, or of bombs, waits for
// its turn instead of taking the memory of the process.
func (b *Broker) validateBatch(ctx context.Context, batch []byte) (record.BatchHeader, error) {
	h, err := record.ParseHeader(batch)
	if err != nil {
		return h, fmt.Errorf("%w: %w", ErrCorruptBatch, err)
	}
	if h.Codec() != record.CodecNone {
		n := int64(b.cfg.MaxMessageBytes)
		if err := b.decompressing.Acquire(ctx, n); err != nil {
			return h, err
		}
		defer b.decompressing.Release(n)
	}
	h, err = record.ValidateLimit(batch, b.cfg.MaxMessageBytes)
	switch {
	case errors.Is(err, record.ErrTooLarge):
		return h, fmt.Errorf("%w: the limit is %d bytes once decompressed: %w", ErrMessageTooLarge, b.cfg.MaxMessageBytes, err)
	case err != nil:
		return h, fmt.Errorf("%w: %w", ErrCorruptBatch, err)
	}
	return h, nil
}

// AddPartitions raises a topic's partition count to total. Partitions are
// only ever added; the new ones are empty.
func (b *Broker) AddPartitions(ctx context.Context, name TopicName, total int32) error {
	if total > MaxPartitions {
		return fmt.Errorf("%w: at most %d partitions, asked for %d", ErrInvalidArgument, MaxPartitions, total)
	}
	for {
		e, ok, err := b.cat.Topics.Get(ctx, name.catName())
		if err != nil {
			return wrapMeta("get topic", err)
		}
		if !ok {
			return fmt.Errorf("%w: %s", ErrTopicNotFound, name)
		}
		if total <= e.Value.Partitions {
			return fmt.Errorf("%w: %s has %d partitions, asked for %d: partitions can only be added", ErrInvalidArgument, name, e.Value.Partitions, total)
		}
		e.Value.Partitions = total
		_, err = b.cat.Topics.Update(ctx, name.catName(), e.Value, e.Version)
		if errors.Is(err, catalog.ErrConflict) {
			continue // changed since we read it
		}
		if errors.Is(err, catalog.ErrNotFound) {
			return fmt.Errorf("%w: %s", ErrTopicNotFound, name)
		}
		if err != nil {
			return wrapMeta("update topic", err)
		}
		b.log.Info("partitions added", "topic", name.String(), "partitions", total)
		return nil
	}
}

package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/magnetar-mq/magnetar/internal/record"
)

// PublishAsync encodes records as one batch and queues it for the
// partition. The Future completes once the batch is durable (or failed);
// batches published on one partition are stored in the order they were
// queued.
func (b *Broker) PublishAsync(ctx context.Context, name TopicName, partition int32, records []record.Record) (Future, error) {
	if len(records) == 0 {
		return Future{}, fmt.Errorf("%w: empty batch", ErrInvalidArgument)
	}
	batch, err := record.AppendBatch(nil, record.BatchOptions{}, records)
	if err != nil {
		return Future{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	if len(batch) > b.cfg.MaxMessageBytes {
		return Future{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrMessageTooLarge, len(batch), b.cfg.MaxMessageBytes)
	}
	for attempt := 0; ; attempt++ {
		p, err := b.partitionFor(ctx, name, partition)
		if err != nil {
			return Future{}, err
		}
		f, err := p.publish(ctx, batch, int64(len(records)))
		if errors.Is(err, ErrClosed) && !errors.Is(err, ErrPartitionFailed) {
			// The partition closed under the publish, which was not
			// stored: its bundle moved (the client should go to the new
			// owner), or it was unloaded idle (load it again).
			if err = b.movedErr(name, partition, err); errors.Is(err, ErrClosed) && attempt < 3 {
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

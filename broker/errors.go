package broker

import (
	"errors"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/metadata"
)

// Sentinel errors of the broker. Protocol adapters map them to their own
// error codes (see internal/errmap).
var (
	ErrInvalidTopicName     = errors.New("broker: invalid topic name")
	ErrTopicNotFound        = errors.New("broker: topic not found")
	ErrTopicExists          = errors.New("broker: topic already exists")
	ErrPartitionNotFound    = errors.New("broker: partition out of range")
	ErrInvalidArgument      = errors.New("broker: invalid argument")
	ErrMessageTooLarge      = errors.New("broker: message batch too large")
	ErrConsumerBusy         = errors.New("broker: exclusive subscription already has a consumer")
	ErrSubscriptionNotFound = errors.New("broker: subscription not found")
	ErrProducerBusy         = errors.New("broker: the partition's producer access mode refuses this producer")
	ErrPartitionFailed      = errors.New("broker: partition unloaded after a storage error")
	ErrClosed               = errors.New("broker: closed")
	// ErrSubscriptionReset ends the consumers of a subscription that was
	// moved by a seek: they resubscribe to get the messages from the new
	// position.
	ErrSubscriptionReset = errors.New("broker: subscription reset by a seek; resubscribe")

	// Errors of appending producer-encoded batches and reading stored ones
	// (AppendBatch, ReadBatches), which the Kafka adapter uses.
	ErrCorruptBatch         = errors.New("broker: corrupt record batch")
	ErrOffsetOutOfRange     = errors.New("broker: offset out of range")
	ErrDuplicateSequence    = errors.New("broker: duplicate producer sequence number")
	ErrOutOfOrderSequence   = errors.New("broker: out of order producer sequence number")
	ErrInvalidProducerEpoch = errors.New("broker: producer epoch is older than the current one")
)

// RefusedFull reports whether err is a refusal for want of disk space, by
// the segment store (bookie.ErrDiskFull) or the metadata service, which
// would not record the next segment (metadata.ErrDiskFull): nothing was
// stored, and the same batch may be stored once there is room.
func RefusedFull(err error) bool {
	return errors.Is(err, bookie.ErrDiskFull) || errors.Is(err, metadata.ErrDiskFull)
}

package errmap

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"google.golang.org/grpc/codes"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/metadata"
)

func TestKafkaCodesOfWrappedBrokerErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want *kerr.Error
	}{
		{broker.ErrTopicNotFound, kerr.UnknownTopicOrPartition},
		{broker.ErrMessageTooLarge, kerr.MessageTooLarge},
		{broker.ErrCorruptBatch, kerr.CorruptMessage},
		{broker.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
		{broker.ErrDuplicateSequence, kerr.DuplicateSequenceNumber},
		{broker.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
		{broker.ErrPartitionFailed, kerr.NotLeaderForPartition},
		{context.DeadlineExceeded, kerr.RequestTimedOut},
		{bookie.ErrTimeout, kerr.RequestTimedOut},
		{bookie.ErrDiskFull, kerr.KafkaStorageError},
		{metadata.ErrDiskFull, kerr.KafkaStorageError},
		{errors.New("something else"), kerr.UnknownServerError},
	} {
		err := fmt.Errorf("wrapped: %w", tc.err)
		if got := KafkaCode(err); got != tc.want.Code {
			t.Errorf("%v: code %d, want %d (%s)", tc.err, got, tc.want.Code, tc.want.Message)
		}
	}
	if KafkaCode(nil) != 0 {
		t.Error("nil is not code 0")
	}
}

// A read that no replica of a shard answered in time is worth another try
// (UNAVAILABLE), not an internal error.
func TestAShardThatDidNotAnswerInTimeIsUnavailable(t *testing.T) {
	err := fmt.Errorf("broker: reading segment 3: %w", bookie.ErrTimeout)
	if got := GRPCCode(err); got != codes.Unavailable {
		t.Fatalf("gRPC code %v, want Unavailable", got)
	}
}

// A metadata write that got no answer in time (a paused metadata leader)
// is worth another try: UNAVAILABLE, which clients retry, not INTERNAL
// (a producer failed to open on it while the metadata leader was paused).
func TestAMetadataWriteWithAnUnknownOutcomeIsUnavailable(t *testing.T) {
	err := fmt.Errorf("broker: update partition: %w", metadata.ErrUnknownOutcome)
	if got := GRPCCode(err); got != codes.Unavailable {
		t.Fatalf("gRPC code %v, want Unavailable", got)
	}
}

package errmap

import (
	"context"
	"errors"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/internal/auth"
	"github.com/magnetar-mq/magnetar/metadata"
)

type row struct {
	err   error
	grpc  codes.Code
	http  int
	kafka *kerr.Error
}

// table is checked in order with errors.Is; the first match wins. 499 is
// the de-facto status for a request the client gave up on. Kafka codes
// that clients retry (NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE,
// REQUEST_TIMED_OUT) go to errors a retry can get past: a partition being
// reloaded, a broker shutting down.
var table = []row{
	{broker.ErrInvalidTopicName, codes.InvalidArgument, http.StatusBadRequest, kerr.InvalidTopicException},
	{broker.ErrInvalidArgument, codes.InvalidArgument, http.StatusBadRequest, kerr.InvalidRequest},
	// A subscription, consumer, producer or group name the broker refuses
	// (broker/names.go); over Kafka the only such name is a group ID.
	{broker.ErrInvalidName, codes.InvalidArgument, http.StatusBadRequest, kerr.InvalidGroupID},
	{broker.ErrTopicNotFound, codes.NotFound, http.StatusNotFound, kerr.UnknownTopicOrPartition},
	{broker.ErrTopicExists, codes.AlreadyExists, http.StatusConflict, kerr.TopicAlreadyExists},
	{broker.ErrPartitionNotFound, codes.OutOfRange, http.StatusNotFound, kerr.UnknownTopicOrPartition},
	{broker.ErrTenantNotFound, codes.NotFound, http.StatusNotFound, kerr.UnknownTopicOrPartition},
	{broker.ErrNamespaceNotFound, codes.NotFound, http.StatusNotFound, kerr.UnknownTopicOrPartition},
	{broker.ErrTenantExists, codes.AlreadyExists, http.StatusConflict, kerr.InvalidRequest},
	{broker.ErrNamespaceExists, codes.AlreadyExists, http.StatusConflict, kerr.InvalidRequest},
	{broker.ErrNotEmpty, codes.FailedPrecondition, http.StatusConflict, kerr.InvalidRequest},
	{broker.ErrTooManyTopics, codes.ResourceExhausted, http.StatusConflict, kerr.PolicyViolation},
	{broker.ErrMessageTooLarge, codes.ResourceExhausted, http.StatusRequestEntityTooLarge, kerr.MessageTooLarge},
	{broker.ErrCorruptBatch, codes.InvalidArgument, http.StatusBadRequest, kerr.CorruptMessage},
	{broker.ErrOffsetOutOfRange, codes.OutOfRange, http.StatusRequestedRangeNotSatisfiable, kerr.OffsetOutOfRange},
	{broker.ErrDuplicateSequence, codes.AlreadyExists, http.StatusConflict, kerr.DuplicateSequenceNumber},
	// A sequencer check failed: ABORTED tells a native producer to go on
	// under a new producer ID (client/producer.go).
	{broker.ErrOutOfOrderSequence, codes.Aborted, http.StatusConflict, kerr.OutOfOrderSequenceNumber},
	{broker.ErrInvalidProducerEpoch, codes.FailedPrecondition, http.StatusConflict, kerr.InvalidProducerEpoch},
	{broker.ErrConsumerBusy, codes.FailedPrecondition, http.StatusConflict, kerr.UnknownServerError},
	// Authentication and authorization: a Kafka handler answers a refused
	// group or cluster operation with its own code (GROUP_/CLUSTER_
	// AUTHORIZATION_FAILED); this row is for topics.
	{broker.ErrPermissionDenied, codes.PermissionDenied, http.StatusForbidden, kerr.TopicAuthorizationFailed},
	// A Kafka producer whose ID was not issued to it gets a new one
	// (InitProducerId), as after a lost producer state.
	{broker.ErrUnknownProducerID, codes.PermissionDenied, http.StatusForbidden, kerr.UnknownProducerID},
	{auth.ErrUnauthenticated, codes.Unauthenticated, http.StatusUnauthorized, kerr.SaslAuthenticationFailed},
	{auth.ErrInvalidToken, codes.Unauthenticated, http.StatusUnauthorized, kerr.SaslAuthenticationFailed},
	// Another broker owns the partition's bundle (or it is moving): the
	// client looks it up again. 421 Misdirected Request for the admin API.
	{broker.ErrNotOwner, codes.FailedPrecondition, http.StatusMisdirectedRequest, kerr.NotLeaderForPartition},
	{broker.ErrNoBroker, codes.Unavailable, http.StatusServiceUnavailable, kerr.LeaderNotAvailable},
	{broker.ErrPartitionFailed, codes.Unavailable, http.StatusServiceUnavailable, kerr.NotLeaderForPartition},
	{broker.ErrProducerBusy, codes.FailedPrecondition, http.StatusConflict, kerr.UnknownServerError},
	{broker.ErrSubscriptionNotFound, codes.NotFound, http.StatusNotFound, kerr.UnknownServerError},
	{broker.ErrSubscriptionExists, codes.AlreadyExists, http.StatusConflict, kerr.UnknownServerError},
	// A backlog quota with producer_exception refuses the publish: a
	// policy of the topic says no, and a retry cannot succeed until
	// consumers catch up, so Kafka's non-retriable POLICY_VIOLATION (its
	// THROTTLING_QUOTA_EXCEEDED is for topic-admin requests, not Produce).
	{broker.ErrBacklogQuotaExceeded, codes.ResourceExhausted, http.StatusTooManyRequests, kerr.PolicyViolation},
	{broker.ErrSubscriptionReset, codes.Aborted, http.StatusConflict, kerr.UnknownServerError},
	{broker.ErrClosed, codes.Unavailable, http.StatusServiceUnavailable, kerr.LeaderNotAvailable},
	{bookie.ErrFenced, codes.Unavailable, http.StatusServiceUnavailable, kerr.NotLeaderForPartition},
	{bookie.ErrClosed, codes.Unavailable, http.StatusServiceUnavailable, kerr.LeaderNotAvailable},
	// No shard to place a segment on (none registered with a live leader
	// yet), or a segment's shard unknown: storage is starting or gone.
	{bookie.ErrUnknownShard, codes.Unavailable, http.StatusServiceUnavailable, kerr.LeaderNotAvailable},
	// No replica of a shard answered in time (its leader is paused or cut
	// off, an election is under way): try again.
	{bookie.ErrTimeout, codes.Unavailable, http.StatusServiceUnavailable, kerr.RequestTimedOut},
	{bookie.ErrDiskFull, codes.ResourceExhausted, http.StatusInsufficientStorage, kerr.KafkaStorageError},
	{metadata.ErrDiskFull, codes.ResourceExhausted, http.StatusInsufficientStorage, kerr.KafkaStorageError},
	// A metadata write whose node did not answer in time (its leader is
	// paused, or an election is under way): it may or may not have been
	// made, and the broker's operations that make it (loading a partition,
	// opening a segment) are safe to try again.
	{metadata.ErrUnknownOutcome, codes.Unavailable, http.StatusServiceUnavailable, kerr.RequestTimedOut},
	{metadata.ErrClosed, codes.Unavailable, http.StatusServiceUnavailable, kerr.LeaderNotAvailable},
	{context.Canceled, codes.Canceled, 499, kerr.RequestTimedOut},
	{context.DeadlineExceeded, codes.DeadlineExceeded, http.StatusGatewayTimeout, kerr.RequestTimedOut},
}

// GRPCCode returns the gRPC status code for err (codes.Internal for errors
// not in the table, codes.OK for nil).
func GRPCCode(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	for _, r := range table {
		if errors.Is(err, r.err) {
			return r.grpc
		}
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	return codes.Internal
}

// HTTPStatus returns the HTTP status for err (500 for errors not in the
// table).
func HTTPStatus(err error) int {
	for _, r := range table {
		if errors.Is(err, r.err) {
			return r.http
		}
	}
	return http.StatusInternalServerError
}

// GRPCStatus converts err to a gRPC status error carrying its message.
func GRPCStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(GRPCCode(err), err.Error())
}

// KafkaCode returns the Kafka protocol error code for err (0 for nil,
// UNKNOWN_SERVER_ERROR (-1) for errors not in the table).
func KafkaCode(err error) int16 {
	if err == nil {
		return 0
	}
	for _, r := range table {
		if errors.Is(err, r.err) {
			return r.kafka.Code
		}
	}
	return kerr.UnknownServerError.Code
}

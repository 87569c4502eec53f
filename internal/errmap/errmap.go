// Package errmap is the one table that maps Magnetar's internal sentinel
// errors to what each protocol reports: gRPC status codes for the native
// protocol now, Kafka error codes and MQTT reason codes as those adapters
// arrive. Keeping one table keeps the protocols consistent.
package errmap

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/metadata"
)

type row struct {
	err  error
	grpc codes.Code
}

// table is checked in order with errors.Is; the first match wins.
var table = []row{
	{broker.ErrInvalidTopicName, codes.InvalidArgument},
	{broker.ErrInvalidArgument, codes.InvalidArgument},
	{broker.ErrTopicNotFound, codes.NotFound},
	{broker.ErrTopicExists, codes.AlreadyExists},
	{broker.ErrPartitionNotFound, codes.OutOfRange},
	{broker.ErrMessageTooLarge, codes.ResourceExhausted},
	{broker.ErrConsumerBusy, codes.FailedPrecondition},
	{broker.ErrPartitionFailed, codes.Unavailable},
	{broker.ErrClosed, codes.Unavailable},
	{bookie.ErrFenced, codes.Unavailable},
	{bookie.ErrClosed, codes.Unavailable},
	{metadata.ErrClosed, codes.Unavailable},
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
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

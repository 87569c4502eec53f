package errmap

import (
	"context"
	"errors"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/metadata"
)

type row struct {
	err  error
	grpc codes.Code
	http int
}

// table is checked in order with errors.Is; the first match wins. 499 is
// the de-facto status for a request the client gave up on.
var table = []row{
	{broker.ErrInvalidTopicName, codes.InvalidArgument, http.StatusBadRequest},
	{broker.ErrInvalidArgument, codes.InvalidArgument, http.StatusBadRequest},
	{broker.ErrTopicNotFound, codes.NotFound, http.StatusNotFound},
	{broker.ErrTopicExists, codes.AlreadyExists, http.StatusConflict},
	{broker.ErrPartitionNotFound, codes.OutOfRange, http.StatusNotFound},
	{broker.ErrMessageTooLarge, codes.ResourceExhausted, http.StatusRequestEntityTooLarge},
	{broker.ErrConsumerBusy, codes.FailedPrecondition, http.StatusConflict},
	{broker.ErrPartitionFailed, codes.Unavailable, http.StatusServiceUnavailable},
	{broker.ErrClosed, codes.Unavailable, http.StatusServiceUnavailable},
	{bookie.ErrFenced, codes.Unavailable, http.StatusServiceUnavailable},
	{bookie.ErrClosed, codes.Unavailable, http.StatusServiceUnavailable},
	{metadata.ErrClosed, codes.Unavailable, http.StatusServiceUnavailable},
	{context.Canceled, codes.Canceled, 499},
	{context.DeadlineExceeded, codes.DeadlineExceeded, http.StatusGatewayTimeout},
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

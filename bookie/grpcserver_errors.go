package bookie

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/bookie/bookiepb"
)

// wireErrors is the one table between bookie's sentinel errors and what
// the gRPC service reports: a status code (a hint for generic clients) and
// an ErrorDetail reason (what RemoteClient maps back to the sentinel).
// It is checked in order with errors.Is; the first match wins.
var wireErrors = []struct {
	err    error
	reason bookiepb.ErrorReason
	code   codes.Code
}{
	{ErrSegmentNotFound, bookiepb.ErrorReason_ERROR_REASON_SEGMENT_NOT_FOUND, codes.NotFound},
	{ErrSegmentExists, bookiepb.ErrorReason_ERROR_REASON_SEGMENT_EXISTS, codes.AlreadyExists},
	{ErrSegmentSealed, bookiepb.ErrorReason_ERROR_REASON_SEGMENT_SEALED, codes.FailedPrecondition},
	{ErrFenced, bookiepb.ErrorReason_ERROR_REASON_FENCED, codes.Aborted},
	{ErrBadOffset, bookiepb.ErrorReason_ERROR_REASON_BAD_OFFSET, codes.OutOfRange},
	{ErrCorrupt, bookiepb.ErrorReason_ERROR_REASON_CORRUPT, codes.InvalidArgument},
	{ErrNotLeader, bookiepb.ErrorReason_ERROR_REASON_NOT_LEADER, codes.Unavailable},
	{ErrUnknownOutcome, bookiepb.ErrorReason_ERROR_REASON_UNKNOWN_OUTCOME, codes.Unavailable},
	{ErrClosed, bookiepb.ErrorReason_ERROR_REASON_CLOSED, codes.Unavailable},
	{ErrDiskFull, bookiepb.ErrorReason_ERROR_REASON_DISK_FULL, codes.ResourceExhausted},
	{ErrUnknownShard, bookiepb.ErrorReason_ERROR_REASON_UNKNOWN_SHARD, codes.NotFound},
}

// toStatus converts an error of a Client to the status the service
// returns. corruptCode is the code for ErrCorrupt: InvalidArgument when the
// caller sent a bad entry, DataLoss when a stored one is bad.
func toStatus(err error, corruptCode codes.Code) error {
	if err == nil {
		return nil
	}
	for _, w := range wireErrors {
		if !errors.Is(err, w.err) {
			continue
		}
		code := w.code
		if w.err == ErrCorrupt {
			code = corruptCode
		}
		detail := &bookiepb.ErrorDetail{Reason: w.reason}
		if nl := (*NotLeaderError)(nil); errors.As(err, &nl) {
			detail.LeaderId, detail.LeaderAddr = nl.LeaderID, nl.LeaderAddr
		}
		st, derr := status.New(code, err.Error()).WithDetails(detail)
		if derr != nil {
			// Marshaling a one-enum message cannot fail; keep the code if it does.
			return status.Error(code, err.Error())
		}
		return st.Err()
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Internal, err.Error())
}

// remoteError is a bookie error that came over the wire: its text is the
// server's, errors.Is matches the sentinel, and status.FromError still
// sees the gRPC status.
type remoteError struct {
	sentinel error
	st       *status.Status
}

func (e *remoteError) Error() string              { return e.st.Message() }
func (e *remoteError) Unwrap() error              { return e.sentinel }
func (e *remoteError) GRPCStatus() *status.Status { return e.st }

// fromStatus converts a gRPC call's error back to a bookie error: the
// sentinel named by its ErrorDetail (a *NotLeaderError for ErrNotLeader), or context.Canceled /
// context.DeadlineExceeded for those codes; any other status (the
// connection failed, say) is returned as is.
func fromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range st.Details() {
		detail, ok := d.(*bookiepb.ErrorDetail)
		if !ok {
			continue
		}
		if detail.GetReason() == bookiepb.ErrorReason_ERROR_REASON_NOT_LEADER {
			return &remoteError{sentinel: &NotLeaderError{LeaderID: detail.GetLeaderId(), LeaderAddr: detail.GetLeaderAddr()}, st: st}
		}
		for _, w := range wireErrors {
			if w.reason == detail.GetReason() {
				return &remoteError{sentinel: w.err, st: st}
			}
		}
	}
	switch st.Code() {
	case codes.Canceled:
		return &remoteError{sentinel: context.Canceled, st: st}
	case codes.DeadlineExceeded:
		return &remoteError{sentinel: context.DeadlineExceeded, st: st}
	}
	return err
}

// isInternal reports a status that no table row explains.
func isInternal(err error) bool {
	c := status.Code(err)
	return c == codes.Internal || c == codes.Unknown
}

package metadata

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/metadata/metadatapb"
)

// GRPCServer serves a Service over gRPC (metadatapb.Metadata). Register it
// on a grpc.Server with Register.
type GRPCServer struct {
	metadatapb.UnimplementedMetadataServer
	svc *Service
}

// NewGRPCServer returns the gRPC API of svc.
func NewGRPCServer(svc *Service) *GRPCServer { return &GRPCServer{svc: svc} }

// Register registers the service on gs.
func (s *GRPCServer) Register(gs grpc.ServiceRegistrar) {
	metadatapb.RegisterMetadataServer(gs, s)
}

// GRPCServerOptions are the options of a grpc.Server that serves the
// metadata API: the keepalive policy that matches Client's (it pings idle
// connections every 10 s, which the default policy would punish with a
// GOAWAY), and server pings that drop the connections (and so the watch
// streams) of clients that are gone.
func GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveTime / 2, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * keepaliveTime, Timeout: keepaliveTimeout}),
	}
}

func readCtx(ctx context.Context, stale bool) context.Context {
	if stale {
		return WithStaleReads(ctx)
	}
	return ctx
}

// Get implements metadatapb.MetadataServer.
func (s *GRPCServer) Get(ctx context.Context, req *metadatapb.GetRequest) (*metadatapb.GetResponse, error) {
	kv, ok, err := s.svc.Get(readCtx(ctx, req.Stale), req.Key)
	if err != nil {
		return nil, s.status(err)
	}
	if !ok {
		return &metadatapb.GetResponse{}, nil
	}
	return &metadatapb.GetResponse{Found: true, Kv: kvToPB(kv)}, nil
}

// Range implements metadatapb.MetadataServer.
func (s *GRPCServer) Range(ctx context.Context, req *metadatapb.RangeRequest) (*metadatapb.RangeResponse, error) {
	if req.Limit < 0 {
		return nil, status.Error(codes.InvalidArgument, "metadata: negative limit")
	}
	res, err := s.svc.Range(readCtx(ctx, req.Stale), req.Prefix, RangeOptions{StartAfter: req.StartAfter, Limit: int(req.Limit)})
	if err != nil {
		return nil, s.status(err)
	}
	out := &metadatapb.RangeResponse{More: res.More, Revision: res.Revision, Kvs: make([]*metadatapb.KV, len(res.KVs))}
	for i, kv := range res.KVs {
		out.Kvs[i] = kvToPB(kv)
	}
	return out, nil
}

// Put implements metadatapb.MetadataServer.
func (s *GRPCServer) Put(ctx context.Context, req *metadatapb.PutRequest) (*metadatapb.PutResponse, error) {
	kv, err := s.svc.Put(ctx, req.Key, req.Value, req.ExpectedVersion)
	if err != nil {
		return nil, s.status(err)
	}
	return &metadatapb.PutResponse{Kv: kvToPB(kv)}, nil
}

// Delete implements metadatapb.MetadataServer.
func (s *GRPCServer) Delete(ctx context.Context, req *metadatapb.DeleteRequest) (*metadatapb.DeleteResponse, error) {
	if err := s.svc.Delete(ctx, req.Key, req.ExpectedVersion); err != nil {
		return nil, s.status(err)
	}
	return &metadatapb.DeleteResponse{}, nil
}

// watchBatch is the most events sent in one WatchResponse.
const watchBatch = 256

// watchProgressInterval is how often a watch stream with no events sends
// an empty response, so that the client can tell a quiet stream from a
// node that stopped answering.
const watchProgressInterval = time.Second

// Watch implements metadatapb.MetadataServer. The stream ends with
// UNAVAILABLE when the node closes or the watcher fell behind the kept
// history; the client resumes from its last revision (and learns in the
// second case that it was compacted). A stream with nothing to send sends
// an empty response every watchProgressInterval.
func (s *GRPCServer) Watch(req *metadatapb.WatchRequest, stream grpc.ServerStreamingServer[metadatapb.WatchResponse]) error {
	ctx := stream.Context()
	start := req.FromRevision
	if start == 0 {
		// "From now on": pin "now" so that a client that resumes after a
		// failover knows where to resume from.
		start = s.svc.Status().Revision
	}
	ch, err := s.svc.Watch(ctx, req.Prefix, start)
	if err != nil {
		return toStatus(err)
	}
	if err := stream.Send(&metadatapb.WatchResponse{Created: true, StartRevision: start, ProgressIntervalMs: watchProgressInterval.Milliseconds()}); err != nil {
		return err
	}
	progress := time.NewTicker(watchProgressInterval)
	defer progress.Stop()
	ended := func() error {
		if err := ctx.Err(); err != nil {
			return toStatus(err)
		}
		return status.Error(codes.Unavailable, "metadata: watch ended by the server; resume from the last revision")
	}
	for {
		var ev Event
		var ok bool
		select {
		case ev, ok = <-ch:
		case <-progress.C:
			if err := stream.Send(&metadatapb.WatchResponse{}); err != nil {
				return err
			}
			continue
		case <-ctx.Done():
			return toStatus(ctx.Err())
		}
		if !ok {
			return ended()
		}
		resp := &metadatapb.WatchResponse{Events: []*metadatapb.Event{eventToPB(ev)}}
		open := true
	batch:
		for open && len(resp.Events) < watchBatch {
			select {
			case ev, open = <-ch:
				if open {
					resp.Events = append(resp.Events, eventToPB(ev))
				}
			default:
				break batch
			}
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
		progress.Reset(watchProgressInterval)
		if !open {
			return ended()
		}
	}
}

// Status implements metadatapb.MetadataServer.
func (s *GRPCServer) Status(ctx context.Context, _ *metadatapb.StatusRequest) (*metadatapb.StatusResponse, error) {
	st := s.svc.Status()
	return &metadatapb.StatusResponse{NodeId: st.NodeID, Leader: st.Leader, LeaderId: st.LeaderID, LeaderAddr: st.LeaderAddr, Revision: st.Revision}, nil
}

func kvToPB(kv KV) *metadatapb.KV {
	return &metadatapb.KV{Key: kv.Key, Value: kv.Value, Version: kv.Version, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Lease: int64(kv.Lease)}
}

func kvFromPB(kv *metadatapb.KV) KV {
	if kv == nil {
		return KV{}
	}
	return KV{Key: kv.Key, Value: kv.Value, Version: kv.Version, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Lease: LeaseID(kv.Lease)}
}

func eventToPB(ev Event) *metadatapb.Event {
	t := metadatapb.EventType_EVENT_TYPE_PUT
	if ev.Type == EventDelete {
		t = metadatapb.EventType_EVENT_TYPE_DELETE
	}
	return &metadatapb.Event{Type: t, Kv: kvToPB(ev.KV)}
}

func eventFromPB(ev *metadatapb.Event) (Event, error) {
	out := Event{KV: kvFromPB(ev.Kv)}
	switch ev.Type {
	case metadatapb.EventType_EVENT_TYPE_PUT:
		out.Type = EventPut
	case metadatapb.EventType_EVENT_TYPE_DELETE:
		out.Type = EventDelete
	default:
		return Event{}, errors.New("metadata: watch event of unknown type " + ev.Type.String())
	}
	return out, nil
}

// wireErrors is the one table between the service's sentinel errors and
// what the gRPC API reports: a status code (a hint for generic clients) and
// an ErrorDetail reason (what Client maps back to the sentinel). Checked in
// order with errors.Is.
var wireErrors = []struct {
	err    error
	reason metadatapb.ErrorReason
	code   codes.Code
}{
	{ErrNotLeader, metadatapb.ErrorReason_ERROR_REASON_NOT_LEADER, codes.Unavailable},
	{ErrUnknownOutcome, metadatapb.ErrorReason_ERROR_REASON_UNKNOWN_OUTCOME, codes.Unavailable},
	{ErrVersionMismatch, metadatapb.ErrorReason_ERROR_REASON_VERSION_MISMATCH, codes.FailedPrecondition},
	{ErrNotFound, metadatapb.ErrorReason_ERROR_REASON_NOT_FOUND, codes.NotFound},
	{ErrInvalidKey, metadatapb.ErrorReason_ERROR_REASON_INVALID_KEY, codes.InvalidArgument},
	{ErrCompacted, metadatapb.ErrorReason_ERROR_REASON_COMPACTED, codes.OutOfRange},
	{ErrClosed, metadatapb.ErrorReason_ERROR_REASON_CLOSED, codes.Unavailable},
	{ErrLeaseNotFound, metadatapb.ErrorReason_ERROR_REASON_LEASE_NOT_FOUND, codes.NotFound},
	{ErrInvalidTxn, metadatapb.ErrorReason_ERROR_REASON_INVALID_TXN, codes.InvalidArgument},
	{ErrInvalidTTL, metadatapb.ErrorReason_ERROR_REASON_INVALID_TTL, codes.InvalidArgument},
	{ErrDiskFull, metadatapb.ErrorReason_ERROR_REASON_DISK_FULL, codes.ResourceExhausted},
}

// toStatus converts a Service error to the gRPC status the API returns.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, raft.ErrNotLeader) {
		// A raft error that reached here unmapped (KeepAlive on a follower).
		err = &NotLeaderError{}
	}
	for _, w := range wireErrors {
		if !errors.Is(err, w.err) {
			continue
		}
		d := &metadatapb.ErrorDetail{Reason: w.reason}
		var nl *NotLeaderError
		if errors.As(err, &nl) {
			d.LeaderId, d.LeaderAddr = nl.LeaderID, nl.LeaderAddr
		}
		st, derr := status.New(w.code, err.Error()).WithDetails(d)
		if derr != nil {
			return status.Error(w.code, err.Error())
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

package bookie

import (
	"context"
	"fmt"
	"log/slog"
	"maps"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/bookie/bookiepb"
)

// MaxGRPCMessageSize bounds one request or response of the bookie gRPC
// service. RemoteClient allows messages this large; a grpc.Server serving
// GRPCServer should be made with GRPCServerOptions so it does too (gRPC's
// default of 4 MiB would fail large appends).
const MaxGRPCMessageSize = 64 << 20

// maxGRPCReadBytes caps a Read's maxBytes so a response stays well under
// MaxGRPCMessageSize, unless a single entry is larger.
const maxGRPCReadBytes = 16 << 20

// HTTP/2 flow-control windows of the bookie service, on both sides. gRPC
// starts streams at 64 KiB and grows the window by estimating the
// bandwidth-delay product, which leaves an append of one 64 KiB batch
// waiting a round trip for a window update; appends and reads of a few
// MiB are the normal case here, so the windows start large.
const (
	grpcStreamWindow = 4 << 20
	grpcConnWindow   = 16 << 20
)

// grpcBufferPool holds gRPC's buffers for encoding and decoding messages,
// with a size class per power of two up to MaxGRPCMessageSize. gRPC's
// default pool jumps from 32 KiB to 1 MiB and zeroes the whole buffer it
// hands out, so every message of a 64 KiB entry cost a 1 MiB memclr on each
// side (a quarter of the CPU of BenchmarkGRPCAppend at 64 KiB).
var grpcBufferPool = func() mem.BufferPool {
	var exps []uint8
	for e := uint8(8); 1<<e <= MaxGRPCMessageSize; e++ {
		exps = append(exps, e)
	}
	p, err := mem.NewBinaryTieredBufferPool(exps...)
	if err != nil {
		panic(err) // the exponents above are valid
	}
	return p
}()

// maxStreamsPerConn bounds the calls a client connection has in flight;
// more wait on the client. With the shards' MaxInflightBytes it bounds
// the memory requests take on the server: a call's request is read whole
// before the shard decides whether it may go on.
const maxStreamsPerConn = 1024

// GRPCServerOptions are the grpc.ServerOptions a server of the bookie
// service needs: message size limits of MaxGRPCMessageSize, flow-control
// windows and a buffer pool sized for batches of entries, a bound on the
// calls in flight per connection, and a keepalive policy that accepts the
// pings of RemoteClients (every 10 s or more, idle connections included;
// gRPC's default policy would close such a connection as abusive after a
// few pings).
func GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveMinTime, PermitWithoutStream: true}),
		grpc.MaxConcurrentStreams(maxStreamsPerConn),
		grpc.MaxRecvMsgSize(MaxGRPCMessageSize),
		grpc.MaxSendMsgSize(MaxGRPCMessageSize),
		grpc.InitialWindowSize(grpcStreamWindow),
		grpc.InitialConnWindowSize(grpcConnWindow),
		experimental.BufferPool(grpcBufferPool),
	}
}

// GRPCServer serves the shards of a bookie process (usually *Shards) as
// the bookie gRPC service. It is a thin transport: every request becomes
// one call of the Client of the shard it names, with the request's
// context, and every error a status whose ErrorDetail names the bookie
// sentinel error. It holds no state and needs no Close; the owner of the
// grpc.Server stops it.
type GRPCServer struct {
	bookiepb.UnimplementedBookieServer
	shards map[string]Client
	only   Client // the one shard, when there is exactly one
	log    *slog.Logger
}

var _ bookiepb.BookieServer = (*GRPCServer)(nil)

// NewGRPCServer returns the gRPC service of shards, by shard ID. A request
// that names no shard goes to the only one, if there is exactly one. log
// (nil discards) receives errors that are not bookie errors.
func NewGRPCServer(shards map[string]Client, log *slog.Logger) *GRPCServer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &GRPCServer{shards: maps.Clone(shards), log: log.With("component", "bookie-grpc")}
	if len(shards) == 1 {
		for _, c := range shards {
			s.only = c
		}
	}
	return s
}

// shard returns the Client of the shard a request names.
func (s *GRPCServer) shard(id string) (Client, error) {
	if id == "" && s.only != nil {
		return s.only, nil
	}
	if c, ok := s.shards[id]; ok {
		return c, nil
	}
	if id == "" {
		return nil, status.Errorf(codes.InvalidArgument, "bookie: the request names no shard and this process hosts %d", len(s.shards))
	}
	return nil, toStatus(fmt.Errorf("%w: %q", ErrUnknownShard, id), codes.NotFound)
}

// Register adds the service to g.
func (s *GRPCServer) Register(g grpc.ServiceRegistrar) { bookiepb.RegisterBookieServer(g, s) }

// status converts err for the wire, logging errors outside the table.
func (s *GRPCServer) status(method string, err error, corruptCode codes.Code) error {
	st := toStatus(err, corruptCode)
	if st != nil && isInternal(st) {
		s.log.Warn("call failed", "method", method, "err", err)
	}
	return st
}

// CreateSegment implements bookiepb.BookieServer.
func (s *GRPCServer) CreateSegment(ctx context.Context, req *bookiepb.CreateSegmentRequest) (*bookiepb.CreateSegmentResponse, error) {
	c, err := s.shard(req.GetShard())
	if err != nil {
		return nil, err
	}
	if err := c.CreateSegment(ctx, req.GetSegment(), req.GetStartOffset(), req.GetEpoch()); err != nil {
		return nil, s.status("CreateSegment", err, codes.InvalidArgument)
	}
	return &bookiepb.CreateSegmentResponse{}, nil
}

// Append implements bookiepb.BookieServer. The request's entry bytes are
// handed to the Client as they are: they were unmarshaled into buffers of
// their own.
func (s *GRPCServer) Append(ctx context.Context, req *bookiepb.AppendRequest) (*bookiepb.AppendResponse, error) {
	c, err := s.shard(req.GetShard())
	if err != nil {
		return nil, err
	}
	next, err := c.Append(ctx, AppendRequest{Segment: req.GetSegment(), Epoch: req.GetEpoch(), Entries: req.GetEntries()})
	if err != nil {
		return nil, s.status("Append", err, codes.InvalidArgument)
	}
	return &bookiepb.AppendResponse{NextOffset: next}, nil
}

// Seal implements bookiepb.BookieServer.
func (s *GRPCServer) Seal(ctx context.Context, req *bookiepb.SealRequest) (*bookiepb.SealResponse, error) {
	c, err := s.shard(req.GetShard())
	if err != nil {
		return nil, err
	}
	info, err := c.Seal(ctx, req.GetSegment(), req.GetEpoch(), req.GetStartOffset())
	if err != nil {
		return nil, s.status("Seal", err, codes.DataLoss)
	}
	return &bookiepb.SealResponse{Info: infoToPB(info)}, nil
}

// Read implements bookiepb.BookieServer. maxBytes is capped at 16 MiB.
func (s *GRPCServer) Read(ctx context.Context, req *bookiepb.ReadRequest) (*bookiepb.ReadResponse, error) {
	c, err := s.shard(req.GetShard())
	if err != nil {
		return nil, err
	}
	maxBytes := int(min(max(req.GetMaxBytes(), 0), maxGRPCReadBytes))
	if req.GetFollowerRead() {
		ctx = WithFollowerReads(ctx)
	}
	entries, err := c.Read(ctx, req.GetSegment(), req.GetFromOffset(), maxBytes)
	if err != nil {
		return nil, s.status("Read", err, codes.DataLoss)
	}
	slab := make([]bookiepb.Entry, len(entries))
	out := make([]*bookiepb.Entry, len(entries))
	for i, e := range entries {
		slab[i].BaseOffset, slab[i].LastOffset, slab[i].Data = e.BaseOffset, e.LastOffset, e.Data
		out[i] = &slab[i]
	}
	return &bookiepb.ReadResponse{Entries: out}, nil
}

// Info implements bookiepb.BookieServer.
func (s *GRPCServer) Info(ctx context.Context, req *bookiepb.InfoRequest) (*bookiepb.InfoResponse, error) {
	c, err := s.shard(req.GetShard())
	if err != nil {
		return nil, err
	}
	if req.GetFollowerRead() {
		ctx = WithFollowerReads(ctx)
	}
	info, err := c.Info(ctx, req.GetSegment())
	if err != nil {
		return nil, s.status("Info", err, codes.DataLoss)
	}
	return &bookiepb.InfoResponse{Info: infoToPB(info)}, nil
}

// Delete implements bookiepb.BookieServer.
func (s *GRPCServer) Delete(ctx context.Context, req *bookiepb.DeleteRequest) (*bookiepb.DeleteResponse, error) {
	c, err := s.shard(req.GetShard())
	if err != nil {
		return nil, err
	}
	if err := c.DeleteSegment(ctx, req.GetSegment()); err != nil {
		return nil, s.status("Delete", err, codes.DataLoss)
	}
	return &bookiepb.DeleteResponse{}, nil
}

// List implements bookiepb.BookieServer.
func (s *GRPCServer) List(ctx context.Context, req *bookiepb.ListRequest) (*bookiepb.ListResponse, error) {
	c, err := s.shard(req.GetShard())
	if err != nil {
		return nil, err
	}
	if req.GetFollowerRead() {
		ctx = WithFollowerReads(ctx)
	}
	infos, err := c.ListSegments(ctx, req.GetAfter(), int(req.GetLimit()))
	if err != nil {
		return nil, s.status("List", err, codes.DataLoss)
	}
	out := make([]*bookiepb.SegmentInfo, len(infos))
	for i, info := range infos {
		out[i] = infoToPB(info)
	}
	return &bookiepb.ListResponse{Segments: out}, nil
}

func infoToPB(i SegmentInfo) *bookiepb.SegmentInfo {
	var state bookiepb.SegmentState
	switch i.State {
	case SegmentOpen:
		state = bookiepb.SegmentState_SEGMENT_STATE_OPEN
	case SegmentSealed:
		state = bookiepb.SegmentState_SEGMENT_STATE_SEALED
	}
	return &bookiepb.SegmentInfo{
		Id: i.ID, State: state, Epoch: i.Epoch,
		StartOffset: i.StartOffset, NextOffset: i.NextOffset, Bytes: i.Bytes,
	}
}

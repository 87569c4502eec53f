package bookie

import (
	"context"
	"fmt"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/experimental"

	"github.com/magnetar-mq/magnetar/bookie/bookiepb"
	"github.com/magnetar-mq/magnetar/internal/record"
)

// RemoteClient is a Client that talks to a bookie shard over gRPC. It is
// safe for concurrent use, and concurrent calls are multiplexed over one
// HTTP/2 connection: many appends can be in flight at once, so they share
// the shard's Raft batches (group commit) as in-process calls do.
//
// Errors are the bookie sentinel errors (errors.Is works) carried by the
// status's ErrorDetail, context.Canceled and context.DeadlineExceeded, or,
// when the call never got an answer from a bookie (connection refused or
// lost), the gRPC status error itself (status.Code gives Unavailable). An
// append that failed that way may or may not have been stored; a writer
// finds out with Info, or seals and moves on.
type RemoteClient struct {
	conn   *grpc.ClientConn // owned: closed by Close; nil if not
	rpc    bookiepb.BookieClient
	closed atomic.Bool
}

var _ Client = (*RemoteClient)(nil)

// Dial connects to the bookie gRPC service at addr (host:port) and waits
// until the connection is ready or ctx is done. Without options it uses
// plaintext; opts are applied after the defaults, so they can add
// transport credentials or a custom dialer. The connection reconnects by
// itself after failures; Close closes it.
func Dial(ctx context.Context, addr string, opts ...grpc.DialOption) (*RemoteClient, error) {
	all := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(grpcStreamWindow),
		grpc.WithInitialConnWindowSize(grpcConnWindow),
		experimental.WithBufferPool(grpcBufferPool),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxGRPCMessageSize),
			grpc.MaxCallSendMsgSize(MaxGRPCMessageSize),
		),
	}, opts...)
	conn, err := grpc.NewClient(addr, all...)
	if err != nil {
		return nil, fmt.Errorf("bookie: dialing %s: %w", addr, err)
	}
	conn.Connect()
	for {
		s := conn.GetState()
		if s == connectivity.Ready {
			break
		}
		if !conn.WaitForStateChange(ctx, s) {
			conn.Close()
			return nil, fmt.Errorf("bookie: dialing %s (connection %s): %w", addr, s, ctx.Err())
		}
	}
	c := NewRemoteClient(conn)
	c.conn = conn
	return c, nil
}

// NewRemoteClient returns a RemoteClient over a connection the caller
// owns (and closes). Its calls should allow messages of
// MaxGRPCMessageSize, as Dial's do.
func NewRemoteClient(cc grpc.ClientConnInterface) *RemoteClient {
	return &RemoteClient{rpc: bookiepb.NewBookieClient(cc)}
}

// Close makes later calls fail with ErrClosed and, if Dial made the
// connection, closes it; calls in flight fail. Close is idempotent.
func (c *RemoteClient) Close() error {
	if c.closed.Swap(true) || c.conn == nil {
		return nil
	}
	return c.conn.Close()
}

// wrap converts a call's error to a bookie error.
func (c *RemoteClient) wrap(err error) error {
	if c.closed.Load() {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return fromStatus(err)
}

// CreateSegment implements Client.
func (c *RemoteClient) CreateSegment(ctx context.Context, segment uint64, startOffset int64, epoch uint64) error {
	if c.closed.Load() {
		return ErrClosed
	}
	_, err := c.rpc.CreateSegment(ctx, &bookiepb.CreateSegmentRequest{Segment: segment, StartOffset: startOffset, Epoch: epoch})
	if err != nil {
		return c.wrap(err)
	}
	return nil
}

// Append implements Client. The entries are marshaled straight from the
// caller's slices (no copy besides the marshaled message); the caller may
// reuse them once Append returns.
func (c *RemoteClient) Append(ctx context.Context, req AppendRequest) (int64, error) {
	if c.closed.Load() {
		return 0, ErrClosed
	}
	resp, err := c.rpc.Append(ctx, &bookiepb.AppendRequest{Segment: req.Segment, Epoch: req.Epoch, Entries: req.Entries})
	if err != nil {
		return 0, c.wrap(err)
	}
	return resp.GetNextOffset(), nil
}

// Seal implements Client.
func (c *RemoteClient) Seal(ctx context.Context, segment uint64, epoch uint64, startOffset int64) (SegmentInfo, error) {
	if c.closed.Load() {
		return SegmentInfo{}, ErrClosed
	}
	resp, err := c.rpc.Seal(ctx, &bookiepb.SealRequest{Segment: segment, Epoch: epoch, StartOffset: startOffset})
	if err != nil {
		return SegmentInfo{}, c.wrap(err)
	}
	return infoFromPB(resp.GetInfo()), nil
}

// Read implements Client. Every entry's CRC is verified again on arrival
// and must match the offsets the server sent with it, so corruption
// anywhere between the shard's disk and the caller is reported as
// ErrCorrupt. The server caps maxBytes at 16 MiB.
func (c *RemoteClient) Read(ctx context.Context, segment uint64, fromOffset int64, maxBytes int) ([]Entry, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	resp, err := c.rpc.Read(ctx, &bookiepb.ReadRequest{Segment: segment, FromOffset: fromOffset, MaxBytes: int64(maxBytes)})
	if err != nil {
		return nil, c.wrap(err)
	}
	return entriesFromPB(segment, resp.GetEntries())
}

// entriesFromPB checks and converts a ReadResponse's entries. The data
// slices are the ones unmarshaling allocated; they are not copied again.
func entriesFromPB(segment uint64, pbs []*bookiepb.Entry) ([]Entry, error) {
	if len(pbs) == 0 {
		return nil, nil
	}
	out := make([]Entry, len(pbs))
	for i, e := range pbs {
		h, err := record.VerifyCRC(e.GetData())
		if err != nil || h.Size() != len(e.GetData()) || h.BaseOffset != e.GetBaseOffset() || h.LastOffset() != e.GetLastOffset() {
			return nil, fmt.Errorf("%w: segment %d: entry %d..%d as received: %v", ErrCorrupt, segment, e.GetBaseOffset(), e.GetLastOffset(), err)
		}
		out[i] = Entry{BaseOffset: e.GetBaseOffset(), LastOffset: e.GetLastOffset(), Data: e.GetData()}
	}
	return out, nil
}

// Info implements Client.
func (c *RemoteClient) Info(ctx context.Context, segment uint64) (SegmentInfo, error) {
	if c.closed.Load() {
		return SegmentInfo{}, ErrClosed
	}
	resp, err := c.rpc.Info(ctx, &bookiepb.InfoRequest{Segment: segment})
	if err != nil {
		return SegmentInfo{}, c.wrap(err)
	}
	return infoFromPB(resp.GetInfo()), nil
}

// DeleteSegment implements Client.
func (c *RemoteClient) DeleteSegment(ctx context.Context, segment uint64) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if _, err := c.rpc.Delete(ctx, &bookiepb.DeleteRequest{Segment: segment}); err != nil {
		return c.wrap(err)
	}
	return nil
}

func infoFromPB(p *bookiepb.SegmentInfo) SegmentInfo {
	var state SegmentState
	switch p.GetState() {
	case bookiepb.SegmentState_SEGMENT_STATE_OPEN:
		state = SegmentOpen
	case bookiepb.SegmentState_SEGMENT_STATE_SEALED:
		state = SegmentSealed
	}
	return SegmentInfo{
		ID: p.GetId(), State: state, Epoch: p.GetEpoch(),
		StartOffset: p.GetStartOffset(), NextOffset: p.GetNextOffset(), Bytes: p.GetBytes(),
	}
}

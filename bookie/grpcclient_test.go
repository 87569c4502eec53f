package bookie_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
)

// serveGRPC serves c over gRPC on lis until the test ends.
func serveGRPC(tb testing.TB, c bookie.Client, lis net.Listener) {
	tb.Helper()
	srv := grpc.NewServer(bookie.GRPCServerOptions()...)
	bookie.NewGRPCServer(map[string]bookie.Client{"s1": c}, nil).Register(srv)
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(lis) })
	tb.Cleanup(func() {
		srv.Stop()
		wg.Wait()
	})
}

// dialTCP serves c on a loopback TCP port and returns a RemoteClient
// connected to it; both are stopped when the test ends.
func dialTCP(tb testing.TB, c bookie.Client) *bookie.RemoteClient {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	serveGRPC(tb, c, lis)
	rc, err := bookie.Dial(ctx, lis.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { rc.Close() })
	return rc
}

// dialBufconn is dialTCP over an in-memory connection.
func dialBufconn(tb testing.TB, c bookie.Client) *bookie.RemoteClient {
	tb.Helper()
	lis := bufconn.Listen(1 << 20)
	serveGRPC(tb, c, lis)
	rc, err := bookie.Dial(ctx, "passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { rc.Close() })
	return rc
}

// A RemoteClient talking to a real shard over loopback TCP behaves exactly
// like the shard in process.
func TestGRPCConformanceShardOverTCP(t *testing.T) {
	bookietest.RunConformance(t, func(t *testing.T) bookie.Client {
		s := openShard(t, t.TempDir())
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		})
		return dialTCP(t, s)
	})
}

// The transport adds nothing of its own: the fake served over an in-memory
// connection passes the suite too.
func TestGRPCConformanceFakeOverBufconn(t *testing.T) {
	bookietest.RunConformance(t, func(t *testing.T) bookie.Client {
		return dialBufconn(t, bookietest.NewFake())
	})
}

// failing is a Client whose every call fails with err.
type failing struct{ err error }

func (f failing) CreateSegment(context.Context, uint64, int64, uint64) error { return f.err }
func (f failing) Append(context.Context, bookie.AppendRequest) (int64, error) {
	return 0, f.err
}
func (f failing) Seal(context.Context, uint64, uint64, int64) (bookie.SegmentInfo, error) {
	return bookie.SegmentInfo{}, f.err
}
func (f failing) Read(context.Context, uint64, int64, int) ([]bookie.Entry, error) {
	return nil, f.err
}
func (f failing) Info(context.Context, uint64) (bookie.SegmentInfo, error) {
	return bookie.SegmentInfo{}, f.err
}
func (f failing) DeleteSegment(context.Context, uint64) error { return f.err }
func (f failing) ListSegments(context.Context, uint64, int) ([]bookie.SegmentInfo, error) {
	return nil, f.err
}

// calls makes every Client call once and returns their errors by name.
func calls(c bookie.Client) map[string]error {
	_, appendErr := c.Append(ctx, bookie.AppendRequest{Segment: 1, Epoch: 1})
	_, sealErr := c.Seal(ctx, 1, 1, 0)
	_, readErr := c.Read(ctx, 1, 0, 100)
	_, infoErr := c.Info(ctx, 1)
	_, listErr := c.ListSegments(ctx, 0, 10)
	return map[string]error{
		"ListSegments":  listErr,
		"CreateSegment": c.CreateSegment(ctx, 1, 0, 1),
		"Append":        appendErr,
		"Seal":          sealErr,
		"Read":          readErr,
		"Info":          infoErr,
		"DeleteSegment": c.DeleteSegment(ctx, 1),
	}
}

var sentinels = []error{
	bookie.ErrSegmentNotFound, bookie.ErrSegmentExists, bookie.ErrSegmentSealed,
	bookie.ErrFenced, bookie.ErrBadOffset, bookie.ErrCorrupt, bookie.ErrClosed,
	context.Canceled, context.DeadlineExceeded,
}

// Every bookie sentinel error, wrapped with detail by the server's Client,
// reaches the remote caller as that sentinel and no other, with the
// server's message and a status code generic gRPC clients can act on.
func TestGRPCSentinelErrorsSurviveTheWire(t *testing.T) {
	t.Parallel()
	for _, sentinel := range sentinels {
		t.Run(sentinel.Error(), func(t *testing.T) {
			t.Parallel()
			serverErr := fmt.Errorf("%w: segment 1 has epoch 3, writer 1", sentinel)
			rc := dialBufconn(t, failing{serverErr})
			for method, err := range calls(rc) {
				for _, other := range sentinels {
					if got := errors.Is(err, other); got != (other == sentinel) {
						t.Errorf("%s: errors.Is(%v, %v) = %v", method, err, other, got)
					}
				}
				if err == nil || err.Error() != serverErr.Error() {
					t.Errorf("%s: message %q, want the server's %q", method, err, serverErr)
				}
				if code := status.Code(err); code == codes.Unknown || code == codes.Internal || code == codes.OK {
					t.Errorf("%s: status code %v", method, code)
				}
			}
		})
	}
}

// An error that is not a bookie error stays one: Internal, matching no
// sentinel.
func TestGRPCOtherErrorsAreInternal(t *testing.T) {
	t.Parallel()
	rc := dialBufconn(t, failing{errors.New("disk on fire")})
	for method, err := range calls(rc) {
		for _, s := range sentinels {
			if errors.Is(err, s) {
				t.Errorf("%s: %v matches %v", method, err, s)
			}
		}
		if status.Code(err) != codes.Internal {
			t.Errorf("%s: %v, want code Internal", method, err)
		}
	}
}

// A closed RemoteClient fails every call with ErrClosed, and so does a
// RemoteClient whose shard was closed under it.
func TestGRPCClosed(t *testing.T) {
	s := openShard(t, t.TempDir())
	rc := dialBufconn(t, s)
	if err := rc.CreateSegment(ctx, 1, 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for method, err := range calls(rc) {
		if !errors.Is(err, bookie.ErrClosed) {
			t.Errorf("shard closed: %s: %v, want ErrClosed", method, err)
		}
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	for method, err := range calls(rc) {
		if !errors.Is(err, bookie.ErrClosed) {
			t.Errorf("client closed: %s: %v, want ErrClosed", method, err)
		}
	}
}

// corruptReads is a Client whose Read returns entries as given.
type corruptReads struct {
	failing
	entries []bookie.Entry
}

func (c corruptReads) Read(context.Context, uint64, int64, int) ([]bookie.Entry, error) {
	return c.entries, nil
}

// The client checks what it receives: an entry whose bytes fail their CRC
// or do not match the offsets sent with them is ErrCorrupt, never returned.
func TestGRPCReadVerifiesEntries(t *testing.T) {
	t.Parallel()
	good := bookietest.BatchN(t, 10, 3)
	flipped := bytes.Clone(good)
	flipped[len(flipped)-1] ^= 1
	for name, e := range map[string]bookie.Entry{
		"flipped byte":       {BaseOffset: 10, LastOffset: 12, Data: flipped},
		"truncated":          {BaseOffset: 10, LastOffset: 12, Data: good[:len(good)-1]},
		"wrong base offset":  {BaseOffset: 11, LastOffset: 12, Data: good},
		"wrong last offset":  {BaseOffset: 10, LastOffset: 13, Data: good},
		"empty":              {BaseOffset: 10, LastOffset: 12},
		"trailing byte":      {BaseOffset: 10, LastOffset: 12, Data: append(bytes.Clone(good), 0)},
		"not a record batch": {Data: []byte("hello")},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rc := dialBufconn(t, corruptReads{entries: []bookie.Entry{{BaseOffset: 10, LastOffset: 12, Data: good}, e}})
			es, err := rc.Read(ctx, 1, 10, 1<<20)
			if !errors.Is(err, bookie.ErrCorrupt) {
				t.Fatalf("read returned %d entries, err %v; want ErrCorrupt", len(es), err)
			}
		})
	}
}

// barrier is a Client whose Append waits until n appends are in flight at
// once, then answers them all.
type barrier struct {
	failing
	n       int
	mu      sync.Mutex
	arrived int
	all     chan struct{}
}

func (b *barrier) Append(ctx context.Context, req bookie.AppendRequest) (int64, error) {
	b.mu.Lock()
	b.arrived++
	if b.arrived == b.n {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
		return int64(len(req.Entries)), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Appends on one connection are pipelined: 16 concurrent appends are all
// at the server at the same time (none waits for another's answer). If
// the connection serialized them, the first would wait forever for the
// other 15 and the test would fail on the context.
func TestGRPCAppendsPipelineOnOneConnection(t *testing.T) {
	t.Parallel()
	const n = 16
	b := &barrier{n: n, all: make(chan struct{})}
	rc := dialTCP(t, b)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			if _, err := rc.Append(cctx, bookie.AppendRequest{Segment: 1, Epoch: 1, Entries: [][]byte{{1}}}); err != nil {
				errs <- err
				cancel() // one failure: do not keep the others waiting
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Dial gives up when its context is done.
func TestDialHonoursContext(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there now
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if rc, err := bookie.Dial(cctx, addr); !errors.Is(err, context.Canceled) {
		if rc != nil {
			rc.Close()
		}
		t.Fatalf("Dial to %s with a cancelled context: %v, want context.Canceled", addr, err)
	}
}

package kafka

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/magnetar-mq/magnetar/internal/connlimit"
)

// maxPending bounds the requests of one connection that are read but not
// yet answered; past it the connection stops reading, which pushes back on
// the client through TCP.
const maxPending = 128

// conn is one client connection. The read loop (serve's goroutine) owns
// lastProduce; the write loop owns the output buffer.
type conn struct {
	s   *Server
	nc  net.Conn
	log *slog.Logger

	ctx    context.Context // canceled by abort
	cancel context.CancelFunc

	queue    chan *pending  // in request order; closed by the read loop
	handlers sync.WaitGroup // asynchronous handlers (produce waits, fetches)

	// lastProduce is the last produce request still waiting for storage;
	// other requests wait for it first (see the package doc).
	lastProduce *pending

	// readCtx is canceled by stopReading and abort: it ends the read
	// loop's waits (for the request budget, a login's backoff).
	readCtx  context.Context
	stopRead context.CancelFunc

	tls    bool      // came in over the TLS listener
	source string    // the peer's source for the failed-login backoff
	auth   authState // owned by the read loop

	requests atomic.Int64 // requests read, for tests and debugging

	// mu orders stopReading with the read loop's deadlines, so a deadline
	// set for the next read cannot undo the one that stops reading.
	mu struct {
		sync.Mutex
		stopping bool
	}
	abortOnce sync.Once
}

// pending is a request whose response is due, in order.
type pending struct {
	corrID int32
	done   chan struct{} // closed once resp is set
	resp   kmsg.Response // nil: no response (produce with acks=0)
	// raw, if not nil, is written instead as a bare size-prefixed frame:
	// a SASL token after a version 0 SaslHandshake.
	raw []byte
}

// result is what a handler returns: a response now, or a function that
// computes it in a goroutine of its own (waiting for storage or for data),
// or neither, for requests that get no response.
type result struct {
	resp  kmsg.Response
	later func(ctx context.Context) kmsg.Response
	// thenClose closes the connection once resp is written (a failed
	// SASL login).
	thenClose bool
	// delay holds resp that long, on the read loop, once the request's
	// budget is released (a failed login's backoff).
	delay time.Duration
}

// errAnsweredThenClosed ends a connection after its last answer.
var errAnsweredThenClosed = errors.New("kafka: connection closed after its answer")

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, queue: make(chan *pending, maxPending), source: connlimit.Source(nc)}
	c.log = s.log.With("remote", nc.RemoteAddr().String())
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.readCtx, c.stopRead = context.WithCancel(c.ctx)
	return c
}

// serve runs the connection until it ends.
func (c *conn) serve() {
	var writer sync.WaitGroup
	writer.Go(c.writeLoop)
	err := c.readLoop()
	close(c.queue)
	switch {
	case errors.Is(err, errStopped), errors.Is(err, errAnsweredThenClosed):
		// The server is closing, or a failed login: answer what was read,
		// then close.
	case errors.Is(err, errIdle):
		c.s.stats.idleClosed.Add(1)
		c.log.Debug("closing idle connection", "connections_max_idle", c.s.cfg.ConnectionsMaxIdle)
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrUnsupported), errors.Is(err, errUnauthenticated),
		errors.Is(err, errReadTimeout), errors.Is(err, errFrameBeforeLogin):
		if suppressed, ok := c.s.logs.closed.allow(); ok {
			c.log.Info("closing connection", "err", err, "suppressed", suppressed)
		}
		c.abort()
	default: // the client went away, or the connection was aborted
		c.log.Debug("connection ended", "err", err)
		c.abort()
	}
	writer.Wait()
	c.abort()
	c.handlers.Wait()
}

// stopReading makes the read loop return; what was read is still answered.
func (c *conn) stopReading() {
	c.mu.Lock()
	c.mu.stopping = true
	c.nc.SetReadDeadline(time.Now())
	c.mu.Unlock()
	c.stopRead()
}

// readWithin sets the deadline of the next reads d from now, unless the
// connection is to stop reading.
func (c *conn) readWithin(d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.stopping {
		return errStopped
	}
	return c.nc.SetReadDeadline(time.Now().Add(d))
}

// readFailed maps a read loop error: a deadline or a canceled wait is
// errStopped when the connection is to stop reading, else limit.
func (c *conn) readFailed(err, limit error) error {
	if !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.stopping {
		return errStopped
	}
	return limit
}

// pause waits d on the read loop, less if the connection stops reading.
func (c *conn) pause(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.readCtx.Done():
	}
}

// abort ends the connection at once: pending work is canceled and nothing
// more is written.
func (c *conn) abort() {
	c.abortOnce.Do(func() {
		c.cancel()
		c.nc.Close()
	})
}

func (c *conn) readLoop() error {
	if err := c.handshakeTLS(); err != nil {
		return err
	}
	br := bufio.NewReaderSize(c.nc, 32<<10)
	var size [4]byte
	for {
		if err := c.readWithin(c.s.cfg.ConnectionsMaxIdle); err != nil {
			return err
		}
		if _, err := io.ReadFull(br, size[:]); err != nil {
			return c.readFailed(err, errIdle)
		}
		n := int32(binary.BigEndian.Uint32(size[:]))
		if err := c.checkFrameSize(n); err != nil {
			return err
		}
		// Reserve the frame's bytes before reading (and allocating) it.
		weight, err := c.s.budget.acquire(c.readCtx, int64(n))
		if err != nil {
			return c.readFailed(err, err)
		}
		if err := c.readWithin(c.s.cfg.RequestReadTimeout); err != nil {
			c.s.budget.release(weight)
			return err
		}
		// A fresh buffer per request: produced batches alias it and are kept.
		frame, err := readFrame(br, int(n))
		if err != nil {
			c.s.budget.release(weight)
			if err = c.readFailed(err, errReadTimeout); errors.Is(err, errReadTimeout) {
				c.s.stats.readTimeouts.Add(1)
				err = fmt.Errorf("%w: a frame of %d bytes, within %v", errReadTimeout, n, c.s.cfg.RequestReadTimeout)
			}
			return err
		}
		if err := c.serveFrame(frame, weight); err != nil {
			return err
		}
	}
}

// handshakeTLS runs the TLS handshake of a TLS connection within
// request-read-timeout.
func (c *conn) handshakeTLS() error {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return nil
	}
	if err := c.readWithin(c.s.cfg.RequestReadTimeout); err != nil {
		return err
	}
	err := tc.Handshake()
	if err = c.readFailed(err, errReadTimeout); errors.Is(err, errReadTimeout) {
		c.s.stats.readTimeouts.Add(1)
		err = fmt.Errorf("%w: TLS handshake, within %v", errReadTimeout, c.s.cfg.RequestReadTimeout)
	}
	return err
}

// checkFrameSize refuses a frame before it is read: over
// max-request-bytes, or over sasl-max-receive-size before login.
func (c *conn) checkFrameSize(n int32) error {
	if n < 0 || int(n) > c.s.cfg.MaxRequestBytes {
		return fmt.Errorf("%w: frame of %d bytes, the limit is %d", ErrMalformed, n, c.s.cfg.MaxRequestBytes)
	}
	if len(c.s.mechanisms) > 0 && !c.auth.done && int(n) > c.s.cfg.SASLMaxReceiveSize {
		c.s.stats.framesBeforeAuth.Add(1)
		return fmt.Errorf("%w: frame of %d bytes, the limit before login is %d", errFrameBeforeLogin, n, c.s.cfg.SASLMaxReceiveSize)
	}
	return nil
}

// serveFrame decodes one frame and handles it, or starts handling it; the
// frame's budget weight is released once it is handled.
func (c *conn) serveFrame(frame []byte, weight int64) error {
	handled := func() { c.s.budget.release(weight) }
	if c.auth.raw {
		// After a version 0 SaslHandshake the client sends bare SASL
		// tokens, each answered with a bare token.
		answer, delay, err := c.rawSASLToken(frame)
		handled()
		if err != nil {
			c.pause(delay)
			return err
		}
		p := &pending{done: make(chan struct{}), raw: answer}
		close(p.done)
		select {
		case c.queue <- p:
		case <-c.ctx.Done():
			return nil
		}
		return nil
	}
	if err := c.checkKeyBeforeLogin(frame); err != nil {
		handled()
		return err
	}
	q, err := parseRequest(frame)
	if err != nil {
		handled()
		return err
	}
	if len(q.clientID) > c.s.cfg.MaxClientIDBytes {
		q.clientID = strings.Clone(q.clientID[:c.s.cfg.MaxClientIDBytes])
	}
	c.requests.Add(1)
	p := &pending{corrID: q.corrID, done: make(chan struct{})}
	select {
	case c.queue <- p:
	case <-c.ctx.Done():
		handled()
		return nil
	}
	if q.req == nil {
		handled()
		p.resp = apiVersionsUnsupported()
		close(p.done)
		return nil
	}
	ctx := c.withPrincipal()
	res, err := c.handle(ctx, q)
	if err != nil {
		handled()
		return err
	}
	if res.later == nil {
		handled()
		c.pause(res.delay)
		p.resp = res.resp
		close(p.done)
		if res.thenClose {
			return errAnsweredThenClosed
		}
		return nil
	}
	if q.key == int16(kmsg.Produce) {
		c.lastProduce = p
	}
	c.handlers.Go(func() {
		p.resp = res.later(ctx)
		handled()
		close(p.done)
	})
	return nil
}

// handle dispatches one request to its API's handler, once authorized
// (authz.go); ctx carries the principal.
func (c *conn) handle(ctx context.Context, q request) (result, error) {
	if err := c.checkAuthenticated(q); err != nil {
		return result{}, err
	}
	switch q.req.(type) {
	case *kmsg.ProduceRequest, *kmsg.FetchRequest, *kmsg.ApiVersionsRequest:
	default:
		// Let earlier produce requests take effect first, as on Kafka.
		if p := c.lastProduce; p != nil {
			select {
			case <-p.done:
			case <-ctx.Done():
				return result{}, ctx.Err()
			}
			c.lastProduce = nil
		}
	}
	if resp, err := c.authorizeRequest(ctx, q.req); resp != nil || err != nil {
		return result{resp: resp}, err
	}
	if group, ok := groupOf(q.req); ok && group != "" {
		if code := c.notCoordinator(ctx, group); code != 0 {
			return result{resp: coordinatorError(q.req, code)}, nil
		}
	}
	switch r := q.req.(type) {
	case *kmsg.ProduceRequest:
		return c.handleProduce(ctx, r)
	case *kmsg.FetchRequest:
		return c.handleFetch(ctx, r)
	case *kmsg.ListOffsetsRequest:
		return result{resp: c.handleListOffsets(ctx, r)}, nil
	case *kmsg.MetadataRequest:
		return result{resp: c.handleMetadata(ctx, r)}, nil
	case *kmsg.ApiVersionsRequest:
		return result{resp: handleApiVersions(r)}, nil
	case *kmsg.CreateTopicsRequest:
		return result{resp: c.handleCreateTopics(ctx, r)}, nil
	case *kmsg.DeleteTopicsRequest:
		return result{resp: c.handleDeleteTopics(ctx, r)}, nil
	case *kmsg.InitProducerIDRequest:
		return result{resp: c.handleInitProducerID(ctx, r)}, nil
	case *kmsg.DescribeConfigsRequest:
		return result{resp: c.handleDescribeConfigs(ctx, r)}, nil
	case *kmsg.CreatePartitionsRequest:
		return result{resp: c.handleCreatePartitions(ctx, r)}, nil
	case *kmsg.OffsetCommitRequest:
		return result{resp: c.handleOffsetCommit(ctx, r)}, nil
	case *kmsg.OffsetFetchRequest:
		return result{resp: c.handleOffsetFetch(ctx, r)}, nil
	case *kmsg.FindCoordinatorRequest:
		return result{resp: c.handleFindCoordinator(ctx, r)}, nil
	case *kmsg.JoinGroupRequest:
		return c.handleJoinGroup(q.clientID, r), nil
	case *kmsg.HeartbeatRequest:
		return result{resp: c.handleHeartbeat(r)}, nil
	case *kmsg.LeaveGroupRequest:
		return result{resp: c.handleLeaveGroup(r)}, nil
	case *kmsg.SyncGroupRequest:
		return c.handleSyncGroup(r), nil
	case *kmsg.DescribeGroupsRequest:
		return result{resp: c.handleDescribeGroups(ctx, r)}, nil
	case *kmsg.ListGroupsRequest:
		return result{resp: c.handleListGroups(ctx, r)}, nil
	case *kmsg.DeleteGroupsRequest:
		return result{resp: c.handleDeleteGroups(ctx, r)}, nil
	case *kmsg.SASLHandshakeRequest:
		return result{resp: c.handleSASLHandshake(r)}, nil
	case *kmsg.SASLAuthenticateRequest:
		return c.handleSASLAuthenticate(r), nil
	case *kmsg.DescribeClusterRequest:
		return result{resp: c.handleDescribeCluster(r)}, nil
	case *kmsg.DescribeACLsRequest:
		return result{resp: c.handleDescribeACLs(ctx, r)}, nil
	case *kmsg.CreateACLsRequest:
		return result{resp: c.handleCreateACLs(ctx, r)}, nil
	case *kmsg.DeleteACLsRequest:
		return result{resp: c.handleDeleteACLs(ctx, r)}, nil
	}
	// parseRequest only decodes advertised keys, each handled above.
	panic(fmt.Sprintf("kafka: no handler for advertised API key %d", q.key))
}

// writeLoop writes responses in request order, flushing whenever it has
// caught up.
func (c *conn) writeLoop() {
	bw := bufio.NewWriterSize(c.nc, 64<<10)
	var buf []byte
	for p := range c.queue {
		select {
		case <-p.done:
		case <-c.ctx.Done():
			return
		}
		switch {
		case p.raw != nil:
			buf = binary.BigEndian.AppendUint32(buf[:0], uint32(len(p.raw)))
			buf = append(buf, p.raw...)
		case p.resp != nil:
			buf = appendResponse(buf[:0], p.corrID, p.resp)
		default:
			buf = buf[:0]
		}
		if len(buf) > 0 {
			if err := c.writeWithin(); err != nil {
				c.abort()
				return
			}
			if _, err := bw.Write(buf); err != nil {
				c.abort()
				return
			}
			if cap(buf) > 1<<20 {
				buf = nil // do not keep a large fetch's buffer
			}
		}
		if len(c.queue) == 0 {
			if err := c.writeWithin(); err != nil {
				c.abort()
				return
			}
			if err := bw.Flush(); err != nil {
				c.abort()
				return
			}
		}
	}
	bw.Flush()
}

// writeWithin gives the writes of a response connections-max-idle: a
// client that takes no response for that long is as idle as one that
// sends no request (as on Kafka, where idle means no bytes moved either
// way), and its connection is closed, with the request budget it holds.
func (c *conn) writeWithin() error {
	return c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.ConnectionsMaxIdle))
}

// frameChunk is how much of a frame is allocated before its bytes arrive:
// a client claiming a huge frame gets memory only as fast as it sends.
const frameChunk = 1 << 20

// readFrame reads an n-byte frame, growing the buffer as bytes arrive.
func readFrame(r io.Reader, n int) ([]byte, error) {
	if n <= frameChunk {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	b := make([]byte, 0, frameChunk)
	for len(b) < n {
		step := min(n-len(b), max(len(b), frameChunk))
		b = slices.Grow(b, step)
		m, err := io.ReadFull(r, b[len(b):len(b)+step])
		b = b[:len(b)+m]
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}

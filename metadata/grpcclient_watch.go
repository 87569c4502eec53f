package metadata

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"

	"github.com/magnetar-mq/magnetar/metadata/metadatapb"
)

// Watch implements Store. The stream follows the leader: when it breaks
// (the node died, leadership moved) or goes silent for longer than the
// server promised to stay (a paused or cut-off node: see
// metadatapb.WatchResponse.progress_interval_ms), it is reopened from the
// last revision delivered, so no event is missed or repeated. The channel
// is closed when ctx ends, the client closes, or the history to resume
// from is compacted (as a Service closes a watcher that fell behind it); a
// new Watch from the last revision then returns ErrCompacted.
func (c *Client) Watch(ctx context.Context, prefix string, fromRevision int64) (<-chan Event, error) {
	wctx, cancel := context.WithCancel(ctx)
	stopOnClose := context.AfterFunc(c.ctx, cancel)
	ws, err := c.openWatch(wctx, prefix, fromRevision)
	if err != nil {
		stopOnClose()
		cancel()
		return nil, err
	}
	out := make(chan Event, watchBuffer)
	c.wg.Go(func() {
		defer close(out)
		defer stopOnClose()
		defer cancel()
		c.runWatch(wctx, prefix, ws, out)
	})
	return out, nil
}

// watchSilenceIntervals is how many of the server's progress intervals a
// stream may stay silent before the client gives up on the node.
const watchSilenceIntervals = 3

// openedWatch is one watch stream on one node.
type openedWatch struct {
	stream grpc.ServerStreamingClient[metadatapb.WatchResponse]
	cancel context.CancelFunc // ends the stream
	addr   string
	start  int64         // the revision the stream starts after
	silent time.Duration // the longest wait for a response; 0: unbounded
}

// openWatch opens a watch stream on the leader and waits for its first
// response, which says where it starts (or carries ErrCompacted). The
// stream lives until ctx ends or its cancel is called; only the wait for
// the first response is bounded by the call timeout.
func (c *Client) openWatch(ctx context.Context, prefix string, from int64) (openedWatch, error) {
	var ws openedWatch
	err := c.do(ctx, retryAlways, func(actx context.Context, addr string, mc metadatapb.MetadataClient) error {
		sctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(actx, cancel)
		s, err := mc.Watch(sctx, &metadatapb.WatchRequest{Prefix: prefix, FromRevision: from})
		var first *metadatapb.WatchResponse
		if err == nil {
			first, err = s.Recv()
		}
		if !stop() && err == nil {
			err = actx.Err() // the call timed out as the first response came
		}
		switch {
		case err != nil:
		case !first.Created:
			err = errors.New("metadata: watch stream did not start with a created response")
		default:
			ws = openedWatch{stream: s, cancel: cancel, addr: addr, start: first.StartRevision,
				silent: watchSilenceIntervals * time.Duration(first.ProgressIntervalMs) * time.Millisecond}
			return nil
		}
		cancel()
		return err
	})
	return ws, err
}

// runWatch delivers the stream's events to out and reopens the stream when
// it breaks or stays silent too long. Events of one revision may span two
// responses, so the position is (revision, events of it delivered): a
// resumed stream starts one revision earlier and skips what was already
// delivered.
func (c *Client) runWatch(ctx context.Context, prefix string, ws openedWatch, out chan<- Event) {
	last, seen, skip := ws.start, 0, 0
	for {
		resp, err := c.recvWatch(ws)
		if err == nil {
			for _, pe := range resp.Events {
				ev, err := eventFromPB(pe)
				if err != nil {
					ws.cancel()
					c.logger.Error("closing a watch", "prefix", prefix, "err", err)
					return
				}
				switch rev := ev.KV.ModRevision; {
				case rev < last:
					continue // cannot happen with a well-behaved server
				case rev == last && skip > 0:
					skip-- // delivered before the stream was reopened
					continue
				case rev == last:
					seen++
				default:
					last, seen, skip = rev, 1, 0
				}
				select {
				case out <- ev:
				case <-ctx.Done():
					ws.cancel()
					return
				}
			}
			continue
		}
		ws.cancel()
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errWatchSilent) {
			c.forget(ws.addr)
		}
		from := last
		if skip = 0; seen > 0 && last > 1 {
			// (From revision 0 would mean "from now on": the rest of
			// revision 1, if it spanned two responses, is not resumed.)
			from, skip = last-1, seen
		}
		c.logger.Debug("watch stream broke; resuming", "prefix", prefix, "addr", ws.addr, "from", from, "err", err)
		if ws, err = c.openWatch(ctx, prefix, from); err != nil {
			if !errors.Is(err, ErrClosed) && ctx.Err() == nil {
				c.logger.Warn("closing a watch that cannot resume", "prefix", prefix, "from", from, "err", err)
			}
			return
		}
	}
}

// errWatchSilent means a watch stream sent nothing for longer than its
// server promised.
var errWatchSilent = errors.New("metadata: the watch stream went silent")

// recvWatch receives the stream's next response, giving up on a stream
// that stays silent longer than ws.silent.
func (c *Client) recvWatch(ws openedWatch) (*metadatapb.WatchResponse, error) {
	if ws.silent <= 0 {
		return ws.stream.Recv()
	}
	t := time.AfterFunc(ws.silent, ws.cancel)
	resp, err := ws.stream.Recv()
	if !t.Stop() { // the timer fired: the stream is cancelled
		return nil, fmt.Errorf("%w: nothing from %s for %v", errWatchSilent, ws.addr, ws.silent)
	}
	return resp, err
}

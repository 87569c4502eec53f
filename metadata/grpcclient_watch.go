package metadata

import (
	"context"
	"errors"

	"google.golang.org/grpc"

	"github.com/magnetar-mq/magnetar/metadata/metadatapb"
)

// Watch implements Store. The stream follows the leader: when it breaks
// (the node died, leadership moved) it is reopened from the last revision
// delivered, so no event is missed or repeated. The channel is closed when
// ctx ends, the client closes, or the history to resume from is compacted
// (as a Service closes a watcher that fell behind it); a new Watch from the
// last revision then returns ErrCompacted.
func (c *Client) Watch(ctx context.Context, prefix string, fromRevision int64) (<-chan Event, error) {
	wctx, cancel := context.WithCancel(ctx)
	stopOnClose := context.AfterFunc(c.ctx, cancel)
	stream, start, err := c.openWatch(wctx, prefix, fromRevision)
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
		c.runWatch(wctx, prefix, stream, start, out)
	})
	return out, nil
}

type watchStream = grpc.ServerStreamingClient[metadatapb.WatchResponse]

// openWatch opens a watch stream on the leader and waits for its first
// response, which says where it starts (or carries ErrCompacted).
func (c *Client) openWatch(ctx context.Context, prefix string, from int64) (watchStream, int64, error) {
	var (
		stream watchStream
		start  int64
	)
	err := c.do(ctx, retryAlways, func(ctx context.Context, mc metadatapb.MetadataClient) error {
		s, err := mc.Watch(ctx, &metadatapb.WatchRequest{Prefix: prefix, FromRevision: from})
		if err != nil {
			return err
		}
		first, err := s.Recv()
		if err != nil {
			return err
		}
		if !first.Created {
			return errors.New("metadata: watch stream did not start with a created response")
		}
		stream, start = s, first.StartRevision
		return nil
	})
	return stream, start, err
}

// runWatch delivers the stream's events to out and reopens the stream when
// it breaks. Events of one revision may span two responses, so the position
// is (revision, events of it delivered): a resumed stream starts one
// revision earlier and skips what was already delivered.
func (c *Client) runWatch(ctx context.Context, prefix string, stream watchStream, start int64, out chan<- Event) {
	last, seen, skip := start, 0, 0
	for {
		resp, err := stream.Recv()
		if err == nil {
			for _, pe := range resp.Events {
				ev, err := eventFromPB(pe)
				if err != nil {
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
					return
				}
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		from := last
		if skip = 0; seen > 0 {
			from, skip = last-1, seen
		}
		c.logger.Debug("watch stream broke; resuming", "prefix", prefix, "from", from, "err", err)
		if stream, _, err = c.openWatch(ctx, prefix, from); err != nil {
			if !errors.Is(err, ErrClosed) && ctx.Err() == nil {
				c.logger.Warn("closing a watch that cannot resume", "prefix", prefix, "from", from, "err", err)
			}
			return
		}
	}
}

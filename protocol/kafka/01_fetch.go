package kafka

import (
	"context"
	"errors"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/magnetar-mq/magnetar/broker"
)

// Fetch, versions 4-12 (12 is flexible; 13 and later name topics by ID).
// Partitions are served from the stored batches, whole: a fetch from an
// offset inside a batch returns that batch and the client skips the
// records before its offset. At least one batch comes back even when it is
// larger than the limits (KIP-74). When there is less than min_bytes, the
// fetch waits for new data on any partition it asked for, up to
// max_wait_ms, in a goroutine of its own. An offset before the log start
// or past the high watermark is OFFSET_OUT_OF_RANGE, with both bounds in
// the answer. There are no transactions, so the last stable offset is the
// high watermark and isolation levels read the same. Fetch sessions
// (KIP-227) are declined: responses carry session ID 0, so clients send
// full fetch requests; a request naming a session gets
// FETCH_SESSION_ID_NOT_FOUND. Replica fields (leader epochs, rack) are
// ignored. A topic the principal may not consume is
// TOPIC_AUTHORIZATION_FAILED (authz.go).

// maxFetchWait caps max_wait_ms.
const maxFetchWait = 30 * time.Second

func (c *conn) handleFetch(ctx context.Context, req *kmsg.FetchRequest) (result, error) {
	if req.SessionID != 0 && req.SessionEpoch != -1 {
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return result{resp: resp}, nil
	}
	// Each topic is mapped and authorized once, now: the wait may retry.
	topics := make([]fetchTopic, len(req.Topics))
	for i, t := range req.Topics {
		topics[i].name, topics[i].err = c.authorizedTopic(ctx, t.Topic, broker.ActionConsume)
	}
	return result{later: func(ctx context.Context) kmsg.Response { return c.fetch(ctx, req, topics) }}, nil
}

// fetchTopic is a fetched topic's name, or why it is refused.
type fetchTopic struct {
	name broker.TopicName
	err  error
}

// fetch answers a fetch, waiting for data as the request allows.
func (c *conn) fetch(ctx context.Context, req *kmsg.FetchRequest, topics []fetchTopic) kmsg.Response {
	wait := min(time.Duration(req.MaxWaitMillis)*time.Millisecond, maxFetchWait)
	timer := time.NewTimer(max(wait, 0))
	defer timer.Stop()
	for {
		resp, bytes, changed, errored := c.fetchOnce(ctx, req, topics)
		if bytes >= int(req.MinBytes) || errored || len(changed) == 0 || ctx.Err() != nil {
			return resp
		}
		cases := make([]reflect.SelectCase, 0, len(changed)+3)
		for _, ch := range [](<-chan struct{}){ctx.Done(), c.s.stop} {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
		}
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)})
		for _, ch := range changed {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
		}
		if i, _, _ := reflect.Select(cases); i < 3 {
			return resp // timed out, closing: answer what there is
		}
	}
}

// fetchOnce reads every partition of the request once. It returns the
// response, the record bytes in it, the channels that signal new data on
// partitions that had none, and whether some partition failed.
func (c *conn) fetchOnce(ctx context.Context, req *kmsg.FetchRequest, topics []fetchTopic) (resp *kmsg.FetchResponse, total int, changed []<-chan struct{}, errored bool) {
	resp = req.ResponseKind().(*kmsg.FetchResponse)
	maxBytes := c.s.cfg.FetchMaxBytes
	if req.MaxBytes > 0 {
		maxBytes = min(maxBytes, int(req.MaxBytes))
	}
	for ti, t := range req.Topics {
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.FetchResponseTopicPartition, len(t.Partitions))
		name, nameErr := topics[ti].name, topics[ti].err
		for i, p := range t.Partitions {
			rp := &rt.Partitions[i]
			*rp = kmsg.NewFetchResponseTopicPartition()
			rp.Partition = p.Partition
			rp.HighWatermark = -1
			rp.RecordBatches = []byte{} // empty, not null
			if nameErr != nil {
				rp.ErrorCode = kafkaCode(nameErr)
				errored = true
				continue
			}
			limit := min(int(p.PartitionMaxBytes), maxBytes-total)
			if limit <= 0 && total > 0 {
				// The response is full: report the bounds without data.
				limit = 0
			}
			res, err := c.s.b.ReadBatches(ctx, name, p.Partition, p.FetchOffset, max(limit, 1))
			if err != nil && !errors.Is(err, broker.ErrOffsetOutOfRange) {
				rp.ErrorCode = kafkaCode(err)
				errored = true
				continue
			}
			rp.HighWatermark = res.HighWatermark
			rp.LastStableOffset = res.HighWatermark
			rp.LogStartOffset = res.LogStart
			if err != nil {
				rp.ErrorCode = kafkaCode(err)
				errored = true
				continue
			}
			if len(res.Batches) == 0 {
				changed = append(changed, res.Changed)
				continue
			}
			if limit == 0 {
				continue
			}
			// Whole batches within the limits, the first one regardless
			// when nothing is in the response yet (KIP-74).
			n, take := 0, 0
			for _, e := range res.Batches {
				size := len(e.Data)
				if (take > 0 || total > 0) && (n+size > limit || total+n+size > maxBytes) {
					break
				}
				n += size
				take++
			}
			switch take {
			case 0:
			case 1:
				rp.RecordBatches = res.Batches[0].Data // the common case: no copy
			default:
				buf := make([]byte, 0, n)
				for _, e := range res.Batches[:take] {
					buf = append(buf, e.Data...)
				}
				rp.RecordBatches = buf
			}
			total += n
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, total, changed, errored
}

package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/magnetar-mq/magnetar/broker"
)

// Produce, versions 0-9 advertised (9 is flexible). Versions 0-2 carry
// the old message formats (magic 0 and 1): they are answered with
// UNSUPPORTED_VERSION per partition; librdkafka only probes version 0 to
// decide it may compress, and then uses a newer one. From version 3 each
// partition carries exactly one RecordBatch v2, stored as sent.
//
// Batches are queued on their partitions before the next request is read,
// so a connection's batches are stored in the order sent; waiting for
// durability happens in a goroutine of its own. acks=0 gets no response,
// and a refused batch then closes the connection, as on Kafka, so that the
// client notices. acks=1 and acks=-1 both answer once the batch is durable
// on the segment store, the only acknowledgement there is. A topic the
// principal may not produce on is TOPIC_AUTHORIZATION_FAILED (authz.go).

// inflightBatch is one partition's batch waiting for storage.
type inflightBatch struct {
	name broker.TopicName
	p    *kmsg.ProduceResponseTopicPartition
	f    broker.Future
}

func (c *conn) handleProduce(ctx context.Context, req *kmsg.ProduceRequest) (result, error) {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	var waits []inflightBatch
	var failed error
	// forged: a batch named a producer ID not issued to the client. IDs
	// cannot be guessed but by trying: after one, the request's other
	// batches are refused unchecked, its source backs off as after a
	// failed login, and the connection is closed once answered.
	var forged error
	total := 0
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			total += len(p.Records)
		}
	}
	for _, t := range req.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(t.Partitions))
		name, nameErr := c.authorizedTopic(ctx, t.Topic, broker.ActionProduce)
		for i, p := range t.Partitions {
			rp := &rt.Partitions[i]
			*rp = kmsg.NewProduceResponseTopicPartition()
			rp.Partition = p.Partition
			rp.BaseOffset = -1
			setErr := func(code int16, err error) {
				rp.ErrorCode = code
				if err != nil {
					msg := err.Error()
					rp.ErrorMessage = &msg
					if failed == nil {
						failed = err
					}
				}
			}
			switch {
			case req.Version < 3:
				setErr(kerr.UnsupportedVersion.Code, fmt.Errorf("produce v%d (message format v0/v1) is not supported", req.Version))
			case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
				setErr(kerr.InvalidRequiredAcks.Code, fmt.Errorf("acks %d", req.Acks))
			case nameErr != nil:
				setErr(kafkaCode(nameErr), nameErr)
			case len(p.Records) > c.s.cfg.MaxMessageBytes:
				setErr(kerr.MessageTooLarge.Code, fmt.Errorf("batch of %d bytes, the limit is %d", len(p.Records), c.s.cfg.MaxMessageBytes))
			case forged != nil:
				setErr(kafkaCode(forged), forged)
			default:
				batch := p.Records
				// Batches alias the request frame; a small one in a large
				// request is copied so it does not pin the rest in caches.
				if 2*len(batch) < total {
					batch = bytes.Clone(batch)
				}
				f, err := c.s.b.AppendBatch(ctx, name, p.Partition, batch)
				if errors.Is(err, broker.ErrUnknownProducerID) {
					forged = err
				}
				if err != nil {
					setErr(kafkaCode(err), err)
					break
				}
				waits = append(waits, inflightBatch{name: name, p: rp, f: f})
			}
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if forged != nil {
		c.pause(c.loginFailed(forged))
		if req.Acks != 0 && len(waits) == 0 {
			return result{resp: resp, thenClose: true}, nil
		}
	}
	if req.Acks == 0 {
		if failed != nil {
			return result{}, fmt.Errorf("kafka: produce with acks=0 refused: %w", failed)
		}
		return result{}, nil // no response
	}
	if len(waits) == 0 {
		return result{resp: resp}, nil
	}
	return result{later: func(ctx context.Context) kmsg.Response {
		for _, w := range waits {
			base, err := w.f.Wait(ctx)
			if err != nil {
				w.p.ErrorCode = kafkaCode(err)
				msg := err.Error()
				w.p.ErrorMessage = &msg
				continue
			}
			w.p.BaseOffset = base
			if start, _, err := c.s.b.PartitionOffsets(ctx, w.name, w.p.Partition); err == nil {
				w.p.LogStartOffset = start
			}
		}
		return resp
	}}, nil
}

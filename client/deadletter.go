package client

import (
	"context"
	"sync"
	"time"

	"github.com/magnetar-mq/magnetar/protocol/native/nativepb"
)

// Dead-letter topics: a message whose redelivery count is past the
// policy's limit never reaches Receive: it is published to the dead-letter
// topic and, once that is durable, acknowledged. If publishing fails it is
// negatively acknowledged, so it comes back and is tried again.

// lazyProducer is a producer created on first use: a consumer's producer
// for its dead-letter or retry topic.
type lazyProducer struct {
	topic string

	mu       sync.Mutex
	producer *Producer
	err      error // of creating the producer, kept to avoid a retry storm
}

// deadLetter takes cm away from the application if it is past the limit.
func (pc *partitionConsumer) deadLetter(cm *ConsumerMessage) bool {
	dl := pc.cons.opts.DeadLetter
	if dl == nil || cm.RedeliveryCount <= dl.MaxRedeliveries {
		return false
	}
	pc.delivered() // its permit comes back: the application never takes it
	m := cm.Message
	m.Properties = pc.cons.originProperties(cm)
	p, err := pc.cons.dlq.producerFor(pc.cons.c)
	if err != nil {
		pc.cons.c.log.Warn("dead-letter topic unavailable; message will be redelivered", "topic", pc.cons.dlq.topic, "err", err)
		pc.nackLater(cm.ID.Offset)
		return true
	}
	off := cm.ID.Offset
	p.SendAsync(context.Background(), &m, func(_ MessageID, _ *Message, err error) {
		if err != nil {
			pc.cons.c.log.Warn("publishing to the dead-letter topic failed; message will be redelivered", "topic", pc.cons.dlq.topic, "err", err)
			pc.nackLater(off)
			return
		}
		select {
		case pc.acks <- off:
		case <-pc.cons.closed:
		}
	})
	return true
}

// nackLater queues a nack without blocking the caller.
func (pc *partitionConsumer) nackLater(off int64) {
	req := controlReq{req: &nativepb.ConsumeRequest{Kind: &nativepb.ConsumeRequest_Nack{Nack: &nativepb.Nack{Offsets: []int64{off}}}}}
	select {
	case pc.control <- req:
	default:
		// The queue is full: the message stays unacknowledged and comes
		// back with the next stream or ack timeout.
	}
}

// producerFor creates the producer on first use.
func (d *lazyProducer) producerFor(c *Client) (*Producer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.producer != nil || d.err != nil {
		return d.producer, d.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := c.CreateProducer(ctx, ProducerOptions{Topic: d.topic})
	if err != nil {
		d.err = err
		time.AfterFunc(5*time.Second, func() { // try again later
			d.mu.Lock()
			d.err = nil
			d.mu.Unlock()
		})
		return nil, err
	}
	d.producer = p
	return p, nil
}

// flush waits for the messages being moved.
func (d *lazyProducer) flush() {
	if d == nil {
		return
	}
	d.mu.Lock()
	p := d.producer
	d.mu.Unlock()
	if p != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Flush(ctx)
	}
}

func (d *lazyProducer) close() error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.producer == nil {
		return nil
	}
	return d.producer.Close()
}

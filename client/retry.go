package client

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"time"
)

// Retry topics (Pulsar's "retry letter topic"). With ConsumerOptions.Retry
// set, the consumer also subscribes, under the same subscription name, to
// a retry topic, and Receive returns the messages of both.
// ReconsumeLater publishes a copy of a message to the retry topic, delayed,
// and acknowledges the original: the application gets it again later
// without holding it, and the main topic's backlog moves on. A message
// reconsumed more than MaxRetries times goes to the dead-letter topic.

// RetryPolicy enables Consumer.ReconsumeLater.
type RetryPolicy struct {
	// Topic is the retry topic; default <topic>-<subscription>-RETRY. It
	// is created when the consumer subscribes if the broker allows it.
	Topic string
	// MaxRetries is how many times a message may be reconsumed later: the
	// next ReconsumeLater sends it to the dead-letter topic
	// (DeadLetterPolicy.Topic, default <topic>-<subscription>-DLQ) instead.
	// 0 means no limit.
	MaxRetries uint32
}

// PropertyReconsumeTimes counts how many times a message in the retry
// topic was reconsumed later.
const PropertyReconsumeTimes = "magnetar.reconsume-times"

// retrying is a consumer's retry topic: a consumer of it on the same
// subscription, which feeds the main consumer's queue, and a producer to
// it.
type retrying struct {
	cons     *Consumer
	producer *lazyProducer
}

// subscribeRetry attaches c's subscription to its retry topic. The retry
// subscription is Shared (Key_Shared for a Key_Shared c), as only those
// honour delivery times; it starts at the earliest message, as anything in
// the retry topic is owed to the subscription.
func (c *Consumer) subscribeRetry(ctx context.Context) (*retrying, error) {
	topic := c.opts.Retry.Topic
	if topic == "" {
		topic = c.topic.Name + "-" + c.opts.Subscription + "-RETRY"
	}
	info, err := c.c.Lookup(ctx, topic, true)
	if err != nil {
		return nil, err
	}
	o := c.opts
	o.Topic, o.Retry, o.InitialPosition, o.Type = info.Name, nil, Earliest, Shared
	if c.opts.Type == KeyShared {
		o.Type = KeyShared
	}
	rc := &Consumer{c: c.c, opts: o, topic: info, queue: c.queue, closed: make(chan struct{}), dlq: c.dlq}
	if err := rc.attach(ctx); err != nil {
		return nil, err
	}
	return &retrying{cons: rc, producer: &lazyProducer{topic: info.Name}}, nil
}

// ReconsumeLater publishes a copy of m (key, value and properties) to the
// retry topic, to be received again by this subscription no earlier than
// delay from now, and then acknowledges m. The copy carries
// PropertyReconsumeTimes and, the first time, the origin properties
// (PropertyOriginTopic, PropertyOriginMessageID,
// PropertyOriginSubscription). Past RetryPolicy.MaxRetries the copy goes
// to the dead-letter topic instead. On error m is not acknowledged: Nack
// it, or it comes back after an ack timeout or a reconnect.
func (c *Consumer) ReconsumeLater(ctx context.Context, m *ConsumerMessage, delay time.Duration) error {
	if c.retry == nil {
		return errors.New("client: ReconsumeLater needs ConsumerOptions.Retry")
	}
	times := uint64(1)
	if v, ok := m.Properties[PropertyReconsumeTimes]; ok {
		if n, err := strconv.ParseUint(v, 10, 32); err == nil {
			times = n + 1
		}
	}
	cp := m.Message
	cp.Properties = c.of(m).originProperties(m)
	cp.Properties[PropertyReconsumeTimes] = strconv.FormatUint(times, 10)
	cp.DeliverAt = time.Now().Add(delay)
	target := c.retry.producer
	if limit := c.opts.Retry.MaxRetries; limit > 0 && times > uint64(limit) {
		target, cp.DeliverAt = c.dlq, time.Time{}
	}
	p, err := target.producerFor(c.c)
	if err != nil {
		return err
	}
	if _, err := p.Send(ctx, &cp); err != nil {
		return err
	}
	return c.Ack(m)
}

// originProperties returns a copy of m's properties naming where it came
// from; a message that names its origin already (one from the retry
// topic) keeps it.
func (c *Consumer) originProperties(m *ConsumerMessage) map[string]string {
	props := make(map[string]string, len(m.Properties)+4)
	maps.Copy(props, m.Properties)
	if _, ok := props[PropertyOriginTopic]; !ok {
		props[PropertyOriginTopic] = c.topic.Name
		props[PropertyOriginMessageID] = m.ID.String()
		props[PropertyOriginSubscription] = c.opts.Subscription
	}
	return props
}

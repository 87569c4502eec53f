package broker

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Publish rate limits (the publish_rate_msgs and publish_rate_bytes
// policies) hold a topic's producers to a rate on this broker, as Pulsar's
// publish throttling does: a publish over the rate waits until the rate
// allows it, it is never failed. Each limited topic has two token buckets
// (messages, bytes) that refill at the rate and hold at most one second's
// worth, so a producer may burst one second's worth after being idle. A
// publish takes its tokens at once, going into debt if needed, and waits
// until the debt would be repaid: publishers are served in the order they
// arrive, and a batch larger than a second's worth simply waits longer.
// The wait is outside every lock and ends early if the caller's context
// ends or the broker closes.

// maxIdleLimiters is how many limiters may exist before idle ones (full
// buckets) are dropped.
const maxIdleLimiters = 4096

// bucket is a token bucket refilled at rate tokens per second, holding at
// most rate tokens. Not safe for concurrent use.
type bucket struct {
	rate   float64
	tokens float64
	last   time.Time
}

// take takes n tokens at now and returns how long the caller must wait
// for the balance to be non-negative again.
func (b *bucket) take(now time.Time, rate float64, n float64) time.Duration {
	if rate != b.rate { // new or changed limit: start with a full bucket
		b.rate, b.tokens, b.last = rate, rate, now
	}
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(b.rate, b.tokens+el.Seconds()*b.rate)
		b.last = now
	}
	b.tokens -= n
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// full reports whether the bucket has refilled by now (its limiter is
// idle and can be dropped without changing anything).
func (b *bucket) full(now time.Time) bool {
	return b.rate == 0 || b.tokens+now.Sub(b.last).Seconds()*b.rate >= b.rate
}

type topicLimiter struct {
	msgs, bytes bucket
}

// publishLimiters are the broker's per-topic limiters.
type publishLimiters struct {
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
	mu    struct {
		sync.Mutex
		m map[TopicName]*topicLimiter
	}
}

func newPublishLimiters(stop <-chan struct{}) *publishLimiters {
	l := &publishLimiters{now: time.Now}
	l.sleep = func(ctx context.Context, d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			return ErrClosed
		}
	}
	l.mu.m = make(map[TopicName]*topicLimiter)
	return l
}

// reserve takes msgs and bytes from the topic's buckets and returns how
// long the publish must wait.
func (l *publishLimiters) reserve(name TopicName, rateMsgs, rateBytes int64, msgs int64, bytes int) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.mu.m[name]
	if t == nil {
		if len(l.mu.m) >= maxIdleLimiters {
			l.dropIdleLocked(now)
		}
		t = &topicLimiter{}
		l.mu.m[name] = t
	}
	var d time.Duration
	if rateMsgs > 0 {
		d = t.msgs.take(now, float64(rateMsgs), float64(msgs))
	} else {
		t.msgs = bucket{}
	}
	if rateBytes > 0 {
		d = max(d, t.bytes.take(now, float64(rateBytes), float64(bytes)))
	} else {
		t.bytes = bucket{}
	}
	return d
}

func (l *publishLimiters) dropIdleLocked(now time.Time) {
	for n, t := range l.mu.m {
		if t.msgs.full(now) && t.bytes.full(now) {
			delete(l.mu.m, n)
		}
	}
}

// throttlePublish waits as long as the topic's publish rate limits require
// before a batch of msgs messages and bytes bytes is queued. Without limits
// it costs one cached policy lookup. It fails only when ctx ends or the
// broker closes while waiting; if the policies cannot be read, the
// publish is not throttled.
func (b *Broker) throttlePublish(ctx context.Context, name TopicName, bytes int, msgs int64) error {
	pol, err := b.EffectivePolicies(ctx, name)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.log.Debug("publish rate limit unknown; not throttling", "topic", name.String(), "err", err)
		return nil
	}
	if pol.PublishRateMsgs <= 0 && pol.PublishRateBytes <= 0 {
		return nil
	}
	d := b.pol.limits.reserve(name, pol.PublishRateMsgs, pol.PublishRateBytes, msgs, bytes)
	if d <= 0 {
		return nil
	}
	err = b.pol.limits.sleep(ctx, d)
	if err != nil && !errors.Is(err, ErrClosed) && ctx.Err() == nil {
		return nil
	}
	return err
}

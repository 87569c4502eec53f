package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/magnetar-mq/magnetar/protocol/native/nativepb"
)

// startFrom is where a Reader starts: an offset, or the first message at
// or after a time.
type startFrom struct {
	offset int64
	time   time.Time
}

func (s *startFrom) apply(sub *nativepb.Subscribe) {
	if !s.time.IsZero() {
		sub.Start = &nativepb.Subscribe_StartTimeMs{StartTimeMs: s.time.UnixMilli()}
		return
	}
	sub.Start = &nativepb.Subscribe_StartOffset{StartOffset: s.offset}
}

// ReaderOptions configure a Reader. Without StartOffset or StartTime it
// starts at InitialPosition (default Latest: only new messages).
type ReaderOptions struct {
	Topic string
	// StartOffset, when StartAtOffset is set, is the first offset read on
	// every partition (clamped to what is retained).
	StartOffset   int64
	StartAtOffset bool
	// StartTime, when set, starts at the first message published at or
	// after it.
	StartTime       time.Time
	InitialPosition InitialPosition
	// ReceiverQueueSize as for consumers; default 1000.
	ReceiverQueueSize int
}

// Reader reads a topic from a chosen position without a durable
// subscription: nothing is acknowledged and nothing is kept on the broker
// once it closes. It resumes after the last message it received when its
// connection breaks.
type Reader struct {
	c *Consumer
}

// CreateReader opens a Reader.
func (c *Client) CreateReader(ctx context.Context, opts ReaderOptions) (*Reader, error) {
	var id [8]byte
	_, _ = rand.Read(id[:])
	co := ConsumerOptions{
		Topic: opts.Topic, Subscription: "reader-" + hex.EncodeToString(id[:]), Type: Exclusive,
		InitialPosition: opts.InitialPosition, ReceiverQueueSize: opts.ReceiverQueueSize, nonDurable: true,
	}
	switch {
	case !opts.StartTime.IsZero():
		co.start = &startFrom{time: opts.StartTime}
	case opts.StartAtOffset:
		co.start = &startFrom{offset: opts.StartOffset}
	}
	cons, err := c.Subscribe(ctx, co)
	if err != nil {
		return nil, err
	}
	return &Reader{c: cons}, nil
}

// Next returns the next message, waiting for one.
func (r *Reader) Next(ctx context.Context) (*ConsumerMessage, error) { return r.c.Receive(ctx) }

// Seek moves the reader on every partition to the first message published
// at or after t.
func (r *Reader) Seek(ctx context.Context, t time.Time) error {
	return r.c.seek(ctx, -1, &nativepb.Seek{Target: &nativepb.Seek_TimeMs{TimeMs: t.UnixMilli()}}, &startFrom{time: t})
}

// SeekID moves the reader on id's partition to id.
func (r *Reader) SeekID(ctx context.Context, id MessageID) error {
	return r.c.seek(ctx, id.Partition, &nativepb.Seek{Target: &nativepb.Seek_Offset{Offset: id.Offset}}, &startFrom{offset: id.Offset})
}

// Topic returns the canonical topic name.
func (r *Reader) Topic() string { return r.c.Topic() }

// Close closes the reader.
func (r *Reader) Close() error { return r.c.Close() }

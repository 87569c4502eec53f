package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// SubscriptionStart is where CreateSubscription starts a subscription.
type SubscriptionStart struct {
	// From is "latest" (default), "earliest", "offset" (Offset) or "time"
	// (the first message published at or after Time).
	From   string
	Offset int64
	Time   time.Time
}

// CursorPosition is a subscription's cursor on one partition after an
// admin operation: every offset below NextOffset is acknowledged.
type CursorPosition struct {
	Partition  int32 `json:"partition"`
	NextOffset int64 `json:"next_offset"`
}

// AllPartitions makes a subscription operation apply to every partition
// of the topic.
const AllPartitions int32 = -1

// SegmentInternalStats is one segment of a partition.
type SegmentInternalStats struct {
	ID               uint64 `json:"id"`
	State            string `json:"state"`
	StartOffset      int64  `json:"start_offset"`
	EndOffset        int64  `json:"end_offset"`
	Bytes            int64  `json:"bytes"`
	Shard            string `json:"shard"`
	Epoch            uint64 `json:"epoch"`
	CreatedUnixMs    int64  `json:"created_unix_ms,omitempty"`
	SealedUnixMs     int64  `json:"sealed_unix_ms,omitempty"`
	LastAppendUnixMs int64  `json:"last_append_unix_ms,omitempty"`
}

// OffsetRange is [Start, End).
type OffsetRange struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

// CursorInternalStats is one subscription's cursor and dispatcher state.
type CursorInternalStats struct {
	Name             string        `json:"name"`
	Durable          bool          `json:"durable"`
	NextOffset       int64         `json:"next_offset"`
	AckedRanges      int           `json:"acked_ranges"`
	FirstAckedRanges []OffsetRange `json:"first_acked_ranges,omitempty"`
	Acked            int64         `json:"acked"`
	AckChunks        int           `json:"ack_chunks"`
	Redeliveries     int           `json:"redeliveries"`
	Backlog          int64         `json:"backlog"`
	BacklogBytes     int64         `json:"backlog_bytes"`
	Type             string        `json:"type,omitempty"`
	Consumers        int           `json:"consumers"`
	Pending          int           `json:"pending"`
	Delayed          int           `json:"delayed"`
}

// PartitionInternalStats is a partition's segments and cursors.
type PartitionInternalStats struct {
	Partition   int32                  `json:"partition"`
	Epoch       uint64                 `json:"epoch"`
	StartOffset int64                  `json:"start_offset"`
	EndOffset   int64                  `json:"end_offset"`
	Segments    []SegmentInternalStats `json:"segments"`
	Cursors     []CursorInternalStats  `json:"cursors"`
}

// TopicInternalStats is every partition's internal state.
type TopicInternalStats struct {
	Topic      string                   `json:"topic"`
	Partitions []PartitionInternalStats `json:"partitions"`
}

// ListSubscriptions returns every subscription of every partition of a
// topic.
func (a *Admin) ListSubscriptions(ctx context.Context, topic string) ([]SubscriptionStats, error) {
	var out []SubscriptionStats
	err := a.do(ctx, http.MethodGet, "/admin/v1/subscriptions/"+topicPath(topic), nil, &out)
	return out, err
}

// CreateSubscription creates a durable subscription on one partition of a
// topic, or on all of them (AllPartitions).
func (a *Admin) CreateSubscription(ctx context.Context, topic, sub string, partition int32, start SubscriptionStart) ([]CursorPosition, error) {
	body := map[string]any{}
	if start.From != "" {
		body["from"] = start.From
	}
	switch start.From {
	case "offset":
		body["offset"] = start.Offset
	case "time":
		body["time_ms"] = start.Time.UnixMilli()
	}
	if partition >= 0 {
		body["partition"] = partition
	}
	var out []CursorPosition
	err := a.do(ctx, http.MethodPut, subscriptionPath(topic, sub, AllPartitions), body, &out)
	return out, err
}

// DeleteSubscription deletes a subscription and its cursor from one
// partition, or from all of them (AllPartitions).
func (a *Admin) DeleteSubscription(ctx context.Context, topic, sub string, partition int32) error {
	return a.do(ctx, http.MethodDelete, subscriptionPath(topic, sub, partition), nil, nil)
}

// ResetSubscription moves a subscription to an offset: everything before
// it counts as acknowledged, everything from it on as not. Attached
// consumers are disconnected and resubscribe from there.
func (a *Admin) ResetSubscription(ctx context.Context, topic, sub string, partition int32, offset int64) ([]CursorPosition, error) {
	return a.subscriptionAction(ctx, topic, sub, partition, map[string]any{"action": "reset", "to_offset": offset})
}

// ResetSubscriptionToTime moves a subscription to the first message
// published at or after t.
func (a *Admin) ResetSubscriptionToTime(ctx context.Context, topic, sub string, partition int32, t time.Time) ([]CursorPosition, error) {
	return a.subscriptionAction(ctx, topic, sub, partition, map[string]any{"action": "reset", "to_time_ms": t.UnixMilli()})
}

// SkipMessages acknowledges the next n unacknowledged messages of a
// subscription, on each partition asked.
func (a *Admin) SkipMessages(ctx context.Context, topic, sub string, partition int32, n int64) ([]CursorPosition, error) {
	return a.subscriptionAction(ctx, topic, sub, partition, map[string]any{"action": "skip", "count": n})
}

// ExpireMessages acknowledges every message of a subscription published
// more than olderThan ago.
func (a *Admin) ExpireMessages(ctx context.Context, topic, sub string, partition int32, olderThan time.Duration) ([]CursorPosition, error) {
	return a.subscriptionAction(ctx, topic, sub, partition, map[string]any{"action": "expire", "older_than_ms": olderThan.Milliseconds()})
}

// InternalStats returns the segments and cursors of every partition of a
// topic.
func (a *Admin) InternalStats(ctx context.Context, topic string) (TopicInternalStats, error) {
	var out TopicInternalStats
	err := a.do(ctx, http.MethodGet, "/admin/v1/internal-stats/topics/"+topicPath(topic), nil, &out)
	return out, err
}

func (a *Admin) subscriptionAction(ctx context.Context, topic, sub string, partition int32, body map[string]any) ([]CursorPosition, error) {
	if partition >= 0 {
		body["partition"] = partition
	}
	var out []CursorPosition
	err := a.do(ctx, http.MethodPost, subscriptionPath(topic, sub, AllPartitions), body, &out)
	return out, err
}

func subscriptionPath(topic, sub string, partition int32) string {
	q := url.Values{"subscription": {sub}}
	if partition >= 0 {
		q.Set("partition", strconv.Itoa(int(partition)))
	}
	return "/admin/v1/subscriptions/" + topicPath(topic) + "?" + q.Encode()
}

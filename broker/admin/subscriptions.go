package admin

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/magnetar-mq/magnetar/broker"
)

// Subscriptions and internal stats:
//
//	GET    /admin/v1/subscriptions/{name}                   every subscription of every partition ([]broker.SubscriptionStats)
//	PUT    /admin/v1/subscriptions/{name}?subscription=S    create (CreateSubscriptionRequest) → []CursorPosition
//	DELETE /admin/v1/subscriptions/{name}?subscription=S    delete, with its cursor
//	POST   /admin/v1/subscriptions/{name}?subscription=S    reset, skip or expire (SubscriptionAction) → []CursorPosition
//	GET    /admin/v1/internal-stats/topics/{name}           segments and cursors per partition (broker.TopicInternalStats)
//
// Every operation applies to all partitions of the topic, or to one with
// ?partition=N (DELETE) or "partition": N in the body. The topic's
// partitions must be owned by the broker asked (421 otherwise).

// CreateSubscriptionRequest is the body of a create.
type CreateSubscriptionRequest struct {
	// From is where the subscription starts: "latest" (default),
	// "earliest", "offset" (Offset) or "time" (the first message published
	// at or after TimeMs, Unix milliseconds).
	From      string `json:"from,omitempty"`
	Offset    int64  `json:"offset,omitempty"`
	TimeMs    int64  `json:"time_ms,omitempty"`
	Partition *int32 `json:"partition,omitempty"`
}

// SubscriptionAction is the body of a POST on a subscription.
type SubscriptionAction struct {
	// Action is "reset" (to ToOffset, or to the first message at or after
	// ToTimeMs when set: everything before counts as acknowledged, from it
	// on as not; consumers are disconnected and resubscribe), "skip"
	// (acknowledge the next Count unacknowledged messages) or "expire"
	// (acknowledge every message published more than OlderThanMs ago).
	Action      string `json:"action"`
	ToOffset    *int64 `json:"to_offset,omitempty"`
	ToTimeMs    *int64 `json:"to_time_ms,omitempty"`
	Count       int64  `json:"count,omitempty"`
	OlderThanMs int64  `json:"older_than_ms,omitempty"`
	Partition   *int32 `json:"partition,omitempty"`
}

// CursorPosition is a subscription's cursor on one partition after an
// operation: every offset below NextOffset is acknowledged.
type CursorPosition struct {
	Partition  int32 `json:"partition"`
	NextOffset int64 `json:"next_offset"`
}

func registerSubscriptions(mux *http.ServeMux, h *handler) {
	h.handle(mux, "GET /admin/v1/subscriptions/{name...}", onTopic(broker.ActionConsume|broker.ActionAdmin), h.listSubscriptions)
	h.handle(mux, "PUT /admin/v1/subscriptions/{name...}", onTopic(broker.ActionConsume|broker.ActionAdmin), h.createSubscription)
	h.handle(mux, "DELETE /admin/v1/subscriptions/{name...}", onTopic(broker.ActionConsume|broker.ActionAdmin), h.deleteSubscription)
	h.handle(mux, "POST /admin/v1/subscriptions/{name...}", onTopic(broker.ActionConsume|broker.ActionAdmin), h.subscriptionAction)
	h.handle(mux, "GET /admin/v1/internal-stats/topics/{name...}", onTopic(broker.ActionAdmin), h.internalStats)
}

func (h *handler) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	name, err := h.b.ParseTopic(r.PathValue("name"))
	if err != nil {
		h.fail(w, err)
		return
	}
	st, err := h.b.TopicStats(r.Context(), name)
	if err != nil {
		h.fail(w, err)
		return
	}
	out := st.Subscriptions
	if out == nil {
		out = []broker.SubscriptionStats{}
	}
	writeJSON(w, http.StatusOK, out)
}

// target is a subscription request's topic, subscription and partitions.
type target struct {
	name       broker.TopicName
	sub        string
	partitions []int32
}

// resolveTarget reads the topic from the path, the subscription from the
// query, and the partitions: only *one if set, else all of the topic's.
func (h *handler) resolveTarget(r *http.Request, one *int32) (target, error) {
	name, err := h.b.ParseTopic(r.PathValue("name"))
	if err != nil {
		return target{}, err
	}
	sub := r.URL.Query().Get("subscription")
	if sub == "" {
		return target{}, fmt.Errorf("%w: ?subscription= is required", broker.ErrInvalidArgument)
	}
	info, err := h.b.Topic(r.Context(), name, false)
	if err != nil {
		return target{}, err
	}
	t := target{name: name, sub: sub}
	if one != nil {
		if *one < 0 || *one >= info.Partitions {
			return target{}, fmt.Errorf("%w: %s has %d partitions, asked for %d", broker.ErrPartitionNotFound, name, info.Partitions, *one)
		}
		t.partitions = []int32{*one}
		return t, nil
	}
	for i := range info.Partitions {
		t.partitions = append(t.partitions, i)
	}
	return t, nil
}

func (h *handler) createSubscription(w http.ResponseWriter, r *http.Request) {
	var req CreateSubscriptionRequest
	if err := readBody(r, &req); err != nil {
		h.fail(w, err)
		return
	}
	initial, at := broker.Latest, (*broker.Position)(nil)
	switch req.From {
	case "", "latest":
	case "earliest":
		initial = broker.Earliest
	case "offset":
		at = &broker.Position{Offset: req.Offset}
	case "time":
		at = &broker.Position{Time: time.UnixMilli(req.TimeMs)}
	default:
		h.fail(w, fmt.Errorf("%w: from %q: want earliest, latest, offset or time", broker.ErrInvalidArgument, req.From))
		return
	}
	t, err := h.resolveTarget(r, req.Partition)
	if err != nil {
		h.fail(w, err)
		return
	}
	out := []CursorPosition{}
	for _, p := range t.partitions {
		next, err := h.b.CreateSubscription(r.Context(), t.name, p, t.sub, initial, at)
		if err != nil {
			h.fail(w, err)
			return
		}
		out = append(out, CursorPosition{Partition: p, NextOffset: next})
	}
	writeJSON(w, http.StatusCreated, out)
}

func (h *handler) deleteSubscription(w http.ResponseWriter, r *http.Request) {
	var one *int32
	if s := r.URL.Query().Get("partition"); s != "" {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			h.fail(w, fmt.Errorf("%w: partition %q", broker.ErrInvalidArgument, s))
			return
		}
		p := int32(n)
		one = &p
	}
	t, err := h.resolveTarget(r, one)
	if err != nil {
		h.fail(w, err)
		return
	}
	st, err := h.b.TopicStats(r.Context(), t.name)
	if err != nil {
		h.fail(w, err)
		return
	}
	deleted := 0
	for _, s := range st.Subscriptions {
		if s.Name != t.sub || !containsPartition(t.partitions, s.Partition) {
			continue
		}
		if err := h.b.DeleteSubscription(r.Context(), t.name, s.Partition, t.sub); err != nil {
			h.fail(w, err)
			return
		}
		deleted++
	}
	if deleted == 0 {
		h.fail(w, fmt.Errorf("%w: %s on %s", broker.ErrSubscriptionNotFound, t.sub, t.name))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func containsPartition(ps []int32, p int32) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

func (h *handler) subscriptionAction(w http.ResponseWriter, r *http.Request) {
	var req SubscriptionAction
	if err := readBody(r, &req); err != nil {
		h.fail(w, err)
		return
	}
	t, err := h.resolveTarget(r, req.Partition)
	if err != nil {
		h.fail(w, err)
		return
	}
	ctx := r.Context()
	var op func(p int32) (int64, error)
	switch req.Action {
	case "reset":
		var pos broker.Position
		switch {
		case req.ToTimeMs != nil && req.ToOffset != nil:
			h.fail(w, fmt.Errorf("%w: reset takes to_offset or to_time_ms, not both", broker.ErrInvalidArgument))
			return
		case req.ToTimeMs != nil:
			pos.Time = time.UnixMilli(*req.ToTimeMs)
		case req.ToOffset != nil:
			pos.Offset = *req.ToOffset
		default:
			h.fail(w, fmt.Errorf("%w: reset needs to_offset or to_time_ms", broker.ErrInvalidArgument))
			return
		}
		op = func(p int32) (int64, error) { return h.b.ResetSubscription(ctx, t.name, p, t.sub, pos) }
	case "skip":
		op = func(p int32) (int64, error) { return h.b.SkipMessages(ctx, t.name, p, t.sub, req.Count) }
	case "expire":
		if req.OlderThanMs < 0 {
			h.fail(w, fmt.Errorf("%w: older_than_ms must not be negative", broker.ErrInvalidArgument))
			return
		}
		cutoff := time.Now().Add(-time.Duration(req.OlderThanMs) * time.Millisecond)
		op = func(p int32) (int64, error) { return h.b.ExpireMessages(ctx, t.name, p, t.sub, cutoff) }
	default:
		h.fail(w, fmt.Errorf("%w: action %q: want reset, skip or expire", broker.ErrInvalidArgument, req.Action))
		return
	}
	out := []CursorPosition{}
	for _, p := range t.partitions {
		next, err := op(p)
		if err != nil {
			h.fail(w, err)
			return
		}
		out = append(out, CursorPosition{Partition: p, NextOffset: next})
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) internalStats(w http.ResponseWriter, r *http.Request) {
	name, err := h.b.ParseTopic(r.PathValue("name"))
	if err != nil {
		h.fail(w, err)
		return
	}
	st, err := h.b.InternalStats(r.Context(), name)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

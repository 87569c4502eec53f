package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/magnetar-mq/magnetar/metadata"
	"github.com/magnetar-mq/magnetar/metadata/catalog"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

// Committed offsets and groups.
//
// A Kafka consumer group commits offsets; Magnetar keeps each one as the
// cursor of the subscription named after the group on that partition, so
// a group's lag is the subscription's backlog and the native API and
// magctl see the same position. Committing an offset moves the cursor to
// it, forward or back, and forgets individual acknowledgements: a Kafka
// commit is cumulative. The group row (catalogpb.Group) lists the topics
// the group has cursors on, so the group can be listed, have all its
// offsets fetched, and be deleted with its cursors.

// MaxCommitMetadata caps the metadata string of one committed offset
// (Kafka's offset.metadata.max.bytes default).
const MaxCommitMetadata = 4096

// Committed is a subscription's committed position: every offset below
// Offset is consumed.
type Committed struct {
	Offset   int64
	Metadata string
}

// CommitOffset moves the subscription sub of a partition to offset (the
// next offset to consume), creating the subscription if needed, and
// returns once the position is durable.
func (b *Broker) CommitOffset(ctx context.Context, name TopicName, partition int32, sub string, c Committed) error {
	if err := b.CheckName(SubscriptionName, sub); err != nil {
		return err
	}
	switch {
	case c.Offset < 0:
		return fmt.Errorf("%w: committed offset %d is negative", ErrInvalidArgument, c.Offset)
	case len(c.Metadata) > MaxCommitMetadata:
		return fmt.Errorf("%w: commit metadata of %d bytes, the limit is %d", ErrInvalidArgument, len(c.Metadata), MaxCommitMetadata)
	}
	p, err := b.partitionFor(ctx, name, partition)
	if errors.Is(err, ErrNotOwner) {
		// A Kafka group's coordinator need not own the partition: write
		// the cursor row. The owner reads it when it next loads the
		// subscription; a copy it holds loaded already is not dirty, so it
		// never writes its older position back (it reports it in stats
		// until it unloads).
		cur := &catalogpb.Cursor{NextOffset: c.Offset, CommitMetadata: c.Metadata}
		_, err = b.cat.Cursors.Set(ctx, catalog.CursorName{Partition: partitionName(name, partition), Subscription: sub}, cur)
		return wrapMeta("commit offset", err)
	}
	if err != nil {
		return err
	}
	s, err := p.subscription(ctx, sub, false, p.at(Latest))
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.mu.next, s.mu.meta = c.Offset, c.Metadata
	s.resetAcksLocked()
	s.mu.Unlock()
	return s.flush(ctx)
}

// CommittedOffset returns the position of subscription sub on a partition;
// false if the subscription does not exist there. It does not load the
// partition. Any name stored may be read, even one names.go refuses now.
func (b *Broker) CommittedOffset(ctx context.Context, name TopicName, partition int32, sub string) (Committed, bool, error) {
	if sub == "" {
		return Committed{}, false, fmt.Errorf("%w: empty %s", ErrInvalidName, SubscriptionName)
	}
	if s := b.loadedSubscription(name, partition, sub); s != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		return Committed{Offset: s.mu.next, Metadata: s.mu.meta}, !s.mu.deleted, nil
	}
	e, ok, err := b.cat.Cursors.Get(ctx, catalog.CursorName{Partition: partitionName(name, partition), Subscription: sub})
	if err != nil || !ok {
		return Committed{}, false, wrapMeta("load cursor", err)
	}
	return Committed{Offset: e.Value.NextOffset, Metadata: e.Value.CommitMetadata}, true, nil
}

// loadedSubscription returns the subscription if its partition is loaded
// and it is in memory, else nil.
func (b *Broker) loadedSubscription(name TopicName, partition int32, sub string) *subscription {
	b.mu.Lock()
	slot := b.mu.partitions[partitionKey{name, partition}]
	b.mu.Unlock()
	if slot == nil {
		return nil
	}
	select {
	case <-slot.ready:
	default:
		return nil
	}
	if slot.p == nil {
		return nil
	}
	slot.p.mu.Lock()
	defer slot.p.mu.Unlock()
	return slot.p.mu.subs[sub]
}

// DeleteSubscription removes subscription sub from a partition: its
// consumer is disconnected and its cursor deleted. Deleting one that does
// not exist is not an error. Any name stored may be deleted, even one
// names.go refuses now: the names created before the rule stay removable.
func (b *Broker) DeleteSubscription(ctx context.Context, name TopicName, partition int32, sub string) error {
	if sub == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalidName, SubscriptionName)
	}
	if s := b.loadedSubscription(name, partition, sub); s != nil {
		s.flushMu.Lock() // no flush in progress can write the cursor back
		s.mu.Lock()
		s.mu.deleted = true
		s.mu.Unlock()
		s.flushMu.Unlock()
		s.p.mu.Lock()
		if s.p.mu.subs[sub] == s {
			delete(s.p.mu.subs, sub)
		}
		s.p.mu.Unlock()
		s.disconnect(nil)
	}
	cn := catalog.CursorName{Partition: partitionName(name, partition), Subscription: sub}
	if err := b.cat.Cursors.Delete(ctx, cn, metadata.AnyVersion); err != nil {
		return wrapMeta("delete cursor", err)
	}
	return b.deleteAckChunks(ctx, cn)
}

// GroupInfo is a group's row: the topics it has cursors on.
type GroupInfo struct {
	Name         string
	ProtocolType string
	Topics       []TopicName
}

// AddGroupTopics records that group has (or is about to have) cursors on
// topics, creating the group row if needed. The group's name follows the
// rule of names.go.
func (b *Broker) AddGroupTopics(ctx context.Context, group, protocolType string, topics []TopicName) error {
	if err := b.CheckName(GroupName, group); err != nil {
		return err
	}
	for {
		e, ok, err := b.cat.Groups.Get(ctx, group)
		if err != nil {
			return wrapMeta("load group", err)
		}
		g := e.Value
		if !ok {
			g = &catalogpb.Group{ProtocolType: protocolType, CreatedUnixMs: time.Now().UnixMilli()}
		}
		changed := !ok
		for _, t := range topics {
			full := t.String()
			if i, found := slices.BinarySearch(g.Topics, full); !found {
				g.Topics = slices.Insert(g.Topics, i, full)
				changed = true
			}
		}
		if g.ProtocolType == "" && protocolType != "" {
			g.ProtocolType, changed = protocolType, true
		}
		if !changed {
			return nil
		}
		if ok {
			_, err = b.cat.Groups.Update(ctx, group, g, e.Version)
		} else {
			_, err = b.cat.Groups.Create(ctx, group, g)
		}
		if errors.Is(err, catalog.ErrConflict) || errors.Is(err, catalog.ErrExists) || errors.Is(err, catalog.ErrNotFound) {
			continue // a concurrent update: read it again
		}
		return wrapMeta("record group", err)
	}
}

// Group returns a group's row; false if there is none. Any name stored
// may be read (and DeleteGroup deletes it), even one names.go refuses now.
func (b *Broker) Group(ctx context.Context, group string) (GroupInfo, bool, error) {
	if group == "" {
		return GroupInfo{}, false, fmt.Errorf("%w: empty %s", ErrInvalidName, GroupName)
	}
	e, ok, err := b.cat.Groups.Get(ctx, group)
	if err != nil || !ok {
		return GroupInfo{}, false, wrapMeta("load group", err)
	}
	return groupInfo(group, e.Value), true, nil
}

// Groups returns every group row, by name.
func (b *Broker) Groups(ctx context.Context) ([]GroupInfo, error) {
	var out []GroupInfo
	var page catalog.Page
	for {
		l, err := b.cat.Groups.List(ctx, page)
		if err != nil {
			return nil, wrapMeta("list groups", err)
		}
		for _, e := range l.Entries {
			out = append(out, groupInfo(e.Name, e.Value))
		}
		if l.Next == "" {
			return out, nil
		}
		page.After = l.Next
	}
}

func groupInfo(name string, g *catalogpb.Group) GroupInfo {
	info := GroupInfo{Name: name, ProtocolType: g.GetProtocolType()}
	for _, t := range g.GetTopics() {
		if n, err := ParseTopicName(t, ""); err == nil {
			info.Topics = append(info.Topics, n)
		}
	}
	return info
}

// DeleteGroup deletes a group's row and its subscription on every
// partition of its topics. A topic deleted since is skipped.
func (b *Broker) DeleteGroup(ctx context.Context, group string) error {
	info, ok, err := b.Group(ctx, group)
	if err != nil || !ok {
		return err
	}
	for _, t := range info.Topics {
		ti, err := b.Topic(ctx, t, false)
		if errors.Is(err, ErrTopicNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		for i := range ti.Partitions {
			if err := b.DeleteSubscription(ctx, t, i, group); err != nil {
				return err
			}
		}
	}
	return wrapMeta("delete group", b.cat.Groups.Delete(ctx, group, metadata.AnyVersion))
}

package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/metadata"
	"github.com/magnetar-mq/magnetar/metadata/catalog"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

// MaxPartitions caps the partitions of one topic.
const MaxPartitions = 4096

// catName is the topic's name in the catalog's terms.
func (n TopicName) catName() catalog.TopicName { return catalog.TopicName(n) }

func partitionName(n TopicName, index int32) catalog.PartitionName {
	return catalog.PartitionName{Topic: n.catName(), Index: index}
}

// TopicInfo describes a topic.
type TopicInfo struct {
	Name       TopicName
	Partitions int32
}

// CreateTopic creates a topic with the given number of partitions in an
// existing namespace (ErrNamespaceNotFound otherwise; the broker's default
// namespace is created if it is missing). It fails with ErrTooManyTopics
// when the namespace has reached its max_topics policy, strictly, even
// with concurrent creates (see createTopicRow).
func (b *Broker) CreateTopic(ctx context.Context, name TopicName, partitions int32) error {
	if partitions < 1 || partitions > MaxPartitions {
		return fmt.Errorf("%w: partitions must be between 1 and %d, got %d", ErrInvalidArgument, MaxPartitions, partitions)
	}
	row := &catalogpb.Topic{Partitions: partitions, CreatedUnixMs: time.Now().UnixMilli()}
	if err := b.createTopicRow(ctx, name, row); err != nil {
		return err
	}
	b.log.Info("topic created", "topic", name.String(), "partitions", partitions)
	return nil
}

// Topic returns the topic's description. With autoCreate, a missing topic
// is created if the effective auto_topic_creation policy of its namespace
// (by default the broker's AutoCreateTopics) allows it, with the
// auto_topic_partitions policy's partitions.
func (b *Broker) Topic(ctx context.Context, name TopicName, autoCreate bool) (TopicInfo, error) {
	for {
		e, ok, err := b.cat.Topics.Get(ctx, name.catName())
		if err != nil {
			return TopicInfo{}, wrapMeta("get topic", err)
		}
		if ok {
			return TopicInfo{Name: name, Partitions: e.Value.Partitions}, nil
		}
		if !autoCreate {
			return TopicInfo{}, fmt.Errorf("%w: %s", ErrTopicNotFound, name)
		}
		pol, err := b.EffectivePolicies(ctx, name)
		if err != nil {
			return TopicInfo{}, err
		}
		if !pol.AutoTopicCreation {
			return TopicInfo{}, fmt.Errorf("%w: %s (automatic creation is off for its namespace)", ErrTopicNotFound, name)
		}
		if err := b.CreateTopic(ctx, name, pol.AutoTopicPartitions); err != nil && !errors.Is(err, ErrTopicExists) {
			return TopicInfo{}, err
		}
	}
}

// ListTopics lists the topics of one namespace ("tenant/namespace"), or of
// every namespace when namespace is empty, in name order.
func (b *Broker) ListTopics(ctx context.Context, namespace string) ([]TopicInfo, error) {
	var scope catalog.NamespaceName
	if namespace = strings.TrimSuffix(namespace, "/"); namespace != "" {
		parts := strings.Split(namespace, "/")
		if len(parts) > 2 || slices.Contains(parts, "") {
			return nil, nil // no topic row lives under such a prefix
		}
		scope.Tenant = parts[0]
		if len(parts) == 2 {
			scope.Namespace = parts[1] // else every namespace of the tenant
		}
	}
	var out []TopicInfo
	var page catalog.Page
	for {
		l, err := b.cat.Topics.List(ctx, scope, page)
		if err != nil {
			return nil, wrapMeta("list topics", err)
		}
		for _, e := range l.Entries {
			name, err := ParseTopicName(e.Name.String(), b.cfg.DefaultNamespace)
			if err != nil {
				continue // not a topic name this version understands
			}
			out = append(out, TopicInfo{Name: name, Partitions: e.Value.Partitions})
		}
		if l.Next == "" {
			return out, nil
		}
		page.After = l.Next
	}
}

// DeleteTopic deletes a topic: its consumers are disconnected, its segments
// deleted from the segment store and its metadata removed.
func (b *Broker) DeleteTopic(ctx context.Context, name TopicName) error {
	info, err := b.Topic(ctx, name, false)
	if err != nil {
		return err
	}
	// Remove the topic row first: from now on the topic does not exist for
	// lookups, and no new partition load can start.
	if err := b.cat.Topics.Delete(ctx, name.catName(), metadata.AnyVersion); err != nil {
		return wrapMeta("delete topic", err)
	}
	for i := int32(0); i < info.Partitions; i++ {
		b.mu.Lock()
		s := b.mu.partitions[partitionKey{name, i}]
		b.mu.Unlock()
		if s != nil {
			<-s.ready
			if s.p != nil {
				b.unload(s.p)
			}
		}
		if err := b.deletePartitionData(ctx, name, i); err != nil {
			return err
		}
	}
	b.log.Info("topic deleted", "topic", name.String())
	return nil
}

func (b *Broker) deletePartitionData(ctx context.Context, name TopicName, index int32) error {
	pn := partitionName(name, index)
	e, ok, err := b.cat.Partitions.Get(ctx, pn)
	if err != nil {
		return wrapMeta("delete partition", err)
	}
	if ok {
		for _, seg := range e.Value.Segments {
			store, err := b.segmentStore(ctx, seg)
			if err != nil {
				return err
			}
			if err := store.DeleteSegment(ctx, seg.Id); err != nil && !errors.Is(err, bookie.ErrSegmentNotFound) {
				return fmt.Errorf("broker: deleting segment %d: %w", seg.Id, err)
			}
		}
		if err := b.cat.Partitions.Delete(ctx, pn, metadata.AnyVersion); err != nil {
			return wrapMeta("delete partition", err)
		}
	}
	for {
		l, err := b.cat.Cursors.List(ctx, pn, catalog.Page{})
		if err != nil {
			return wrapMeta("delete cursors", err)
		}
		for _, c := range l.Entries {
			if err := b.cat.Cursors.Delete(ctx, c.Name, metadata.AnyVersion); err != nil {
				return wrapMeta("delete cursor", err)
			}
			if err := b.deleteAckChunks(ctx, c.Name); err != nil {
				return err
			}
		}
		if l.Next == "" {
			return nil
		}
	}
}

// PartitionStats is the state of one partition.
type PartitionStats struct {
	Partition int32 `json:"partition"`
	// StartOffset is the first retained offset, EndOffset one past the last.
	StartOffset int64 `json:"start_offset"`
	EndOffset   int64 `json:"end_offset"`
	Segments    int   `json:"segments"`
	Bytes       int64 `json:"bytes"`
}

// SubscriptionStats is the state of one subscription on one partition.
type SubscriptionStats struct {
	Name      string `json:"name"`
	Partition int32  `json:"partition"`
	// NextOffset is where the subscription resumes: all below is acked.
	NextOffset int64 `json:"next_offset"`
	// Backlog counts the messages not yet acknowledged.
	Backlog   int64 `json:"backlog"`
	Consumers int   `json:"consumers"`
	// Type is the subscription type of the attached consumers.
	Type string `json:"type"`
	// Unacked counts the messages handed to consumers and not yet
	// acknowledged; Delayed those waiting for their delivery time.
	Unacked int `json:"unacked"`
	Delayed int `json:"delayed"`
}

// TopicStats summarises a topic.
type TopicStats struct {
	Topic         string              `json:"topic"`
	Partitions    []PartitionStats    `json:"partitions"`
	Subscriptions []SubscriptionStats `json:"subscriptions"`
	// Messages is the number of retained messages over all partitions.
	Messages int64 `json:"messages"`
	Bytes    int64 `json:"bytes"`
}

// TopicStats loads the topic's partitions and reports their state.
func (b *Broker) TopicStats(ctx context.Context, name TopicName) (TopicStats, error) {
	info, err := b.Topic(ctx, name, false)
	if err != nil {
		return TopicStats{}, err
	}
	st := TopicStats{Topic: name.String()}
	for i := int32(0); i < info.Partitions; i++ {
		p, err := b.partitionFor(ctx, name, i)
		if err != nil {
			return TopicStats{}, err
		}
		ps, subs, err := p.stats(ctx)
		if err != nil {
			return TopicStats{}, err
		}
		st.Partitions = append(st.Partitions, ps)
		st.Subscriptions = append(st.Subscriptions, subs...)
		st.Messages += ps.EndOffset - ps.StartOffset
		st.Bytes += ps.Bytes
	}
	sort.Slice(st.Subscriptions, func(i, j int) bool {
		a, c := st.Subscriptions[i], st.Subscriptions[j]
		if a.Name != c.Name {
			return a.Name < c.Name
		}
		return a.Partition < c.Partition
	})
	return st, nil
}

// allocSegmentID returns a cluster-unique segment ID from a counter in the
// metadata store.
func (b *Broker) allocSegmentID(ctx context.Context) (uint64, error) {
	id, err := b.cat.NextSegmentID(ctx)
	return id, wrapMeta("allocate segment id", err)
}

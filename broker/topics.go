package broker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/internal/metapb"
	"github.com/magnetar-mq/magnetar/metadata"
)

// Metadata layout of the broker's records.
const (
	topicsPrefix     = "/topics/"
	partitionsPrefix = "/partitions/"
	cursorsPrefix    = "/cursors/"
	segmentIDKey     = "/counters/segment-id"
	// MaxPartitions caps the partitions of one topic.
	MaxPartitions = 4096
)

func topicKey(n TopicName) string { return topicsPrefix + n.String() }

func partitionMetaKey(n TopicName, index int32) string {
	return partitionsPrefix + n.String() + "/" + strconv.Itoa(int(index))
}

func cursorKey(n TopicName, index int32, sub string) string {
	return cursorsPrefix + n.String() + "/" + strconv.Itoa(int(index)) + "/" + sub
}

// TopicInfo describes a topic.
type TopicInfo struct {
	Name       TopicName
	Partitions int32
}

// CreateTopic creates a topic with the given number of partitions.
func (b *Broker) CreateTopic(ctx context.Context, name TopicName, partitions int32) error {
	if partitions < 1 || partitions > MaxPartitions {
		return fmt.Errorf("%w: partitions must be between 1 and %d, got %d", ErrInvalidArgument, MaxPartitions, partitions)
	}
	val, err := proto.Marshal(&metapb.Topic{Partitions: partitions, CreatedUnixMs: time.Now().UnixMilli()})
	if err != nil {
		return err
	}
	if _, err := b.meta.Put(ctx, topicKey(name), val, 0); err != nil {
		if errors.Is(err, metadata.ErrVersionMismatch) {
			return fmt.Errorf("%w: %s", ErrTopicExists, name)
		}
		return wrapMeta("create topic", err)
	}
	b.log.Info("topic created", "topic", name.String(), "partitions", partitions)
	return nil
}

// Topic returns the topic's description. With autoCreate (and the broker's
// AutoCreateTopics), a missing topic is created with one partition.
func (b *Broker) Topic(ctx context.Context, name TopicName, autoCreate bool) (TopicInfo, error) {
	for {
		kv, ok, err := b.meta.Get(ctx, topicKey(name))
		if err != nil {
			return TopicInfo{}, wrapMeta("get topic", err)
		}
		if ok {
			var t metapb.Topic
			if err := proto.Unmarshal(kv.Value, &t); err != nil {
				return TopicInfo{}, fmt.Errorf("broker: topic %s: corrupt metadata: %w", name, err)
			}
			return TopicInfo{Name: name, Partitions: t.Partitions}, nil
		}
		if !autoCreate || !b.cfg.AutoCreateTopics {
			return TopicInfo{}, fmt.Errorf("%w: %s", ErrTopicNotFound, name)
		}
		if err := b.CreateTopic(ctx, name, 1); err != nil && !errors.Is(err, ErrTopicExists) {
			return TopicInfo{}, err
		}
	}
}

// ListTopics lists the topics of one namespace ("tenant/namespace"), or of
// every namespace when namespace is empty, in name order.
func (b *Broker) ListTopics(ctx context.Context, namespace string) ([]TopicInfo, error) {
	prefix := topicsPrefix
	if namespace != "" {
		prefix += strings.TrimSuffix(namespace, "/") + "/"
	}
	var out []TopicInfo
	opts := metadata.RangeOptions{Limit: 1000}
	for {
		res, err := b.meta.Range(ctx, prefix, opts)
		if err != nil {
			return nil, wrapMeta("list topics", err)
		}
		for _, kv := range res.KVs {
			name, err := ParseTopicName(strings.TrimPrefix(kv.Key, topicsPrefix), b.cfg.DefaultNamespace)
			if err != nil {
				continue // not a topic row this version understands
			}
			var t metapb.Topic
			if err := proto.Unmarshal(kv.Value, &t); err != nil {
				return nil, fmt.Errorf("broker: topic %s: corrupt metadata: %w", name, err)
			}
			out = append(out, TopicInfo{Name: name, Partitions: t.Partitions})
		}
		if !res.More || len(res.KVs) == 0 {
			return out, nil
		}
		opts.StartAfter = res.KVs[len(res.KVs)-1].Key
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
	if err := b.meta.Delete(ctx, topicKey(name), metadata.AnyVersion); err != nil {
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
	key := partitionMetaKey(name, index)
	kv, ok, err := b.meta.Get(ctx, key)
	if err != nil {
		return wrapMeta("delete partition", err)
	}
	if ok {
		var pm metapb.Partition
		if err := proto.Unmarshal(kv.Value, &pm); err != nil {
			return fmt.Errorf("broker: partition %s-%d: corrupt metadata: %w", name, index, err)
		}
		for _, seg := range pm.Segments {
			if err := b.store.DeleteSegment(ctx, seg.Id); err != nil && !errors.Is(err, bookie.ErrSegmentNotFound) {
				return fmt.Errorf("broker: deleting segment %d: %w", seg.Id, err)
			}
		}
		if err := b.meta.Delete(ctx, key, metadata.AnyVersion); err != nil {
			return wrapMeta("delete partition", err)
		}
	}
	prefix := cursorsPrefix + name.String() + "/" + strconv.Itoa(int(index)) + "/"
	for {
		res, err := b.meta.Range(ctx, prefix, metadata.RangeOptions{Limit: 1000})
		if err != nil {
			return wrapMeta("delete cursors", err)
		}
		for _, kv := range res.KVs {
			if err := b.meta.Delete(ctx, kv.Key, metadata.AnyVersion); err != nil {
				return wrapMeta("delete cursor", err)
			}
		}
		if !res.More {
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
	for {
		kv, ok, err := b.meta.Get(ctx, segmentIDKey)
		if err != nil {
			return 0, wrapMeta("allocate segment id", err)
		}
		var cur uint64
		var version int64
		if ok {
			cur, err = strconv.ParseUint(string(kv.Value), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("broker: corrupt segment id counter %q", kv.Value)
			}
			version = kv.Version
		}
		next := cur + 1
		_, err = b.meta.Put(ctx, segmentIDKey, []byte(strconv.FormatUint(next, 10)), version)
		if errors.Is(err, metadata.ErrVersionMismatch) {
			continue
		}
		if err != nil {
			return 0, wrapMeta("allocate segment id", err)
		}
		return next, nil
	}
}

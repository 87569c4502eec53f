package broker

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
	"github.com/magnetar-mq/magnetar/metadata/metadatatest"
)

func benchBroker(b *testing.B) *Broker {
	meta := metadatatest.NewStore()
	br, err := New(DefaultConfig(), meta, bookie.OneShard("s1", bookietest.NewFake()), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		br.Close()
		meta.Close()
	})
	return br
}

// BenchmarkEffectivePolicies measures the hot-path lookup once a topic's
// policies are cached (the namespace and the topic both set some).
func BenchmarkEffectivePolicies(b *testing.B) {
	br := benchBroker(b)
	ctx := b.Context()
	n, _ := br.ParseTopic("bench")
	if err := br.CreateTopic(ctx, n, 1); err != nil {
		b.Fatal(err)
	}
	if _, err := br.SetNamespacePolicies(ctx, n.NamespaceName(), PolicyUpdate{Set: &catalogpb.Policies{MessageTtlMs: proto.Int64(1000)}}); err != nil {
		b.Fatal(err)
	}
	if _, err := br.SetTopicPolicies(ctx, n, PolicyUpdate{Set: &catalogpb.Policies{RetentionMs: proto.Int64(1000)}}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := br.EffectivePolicies(ctx, n); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkThrottlePublishUnderTheLimit measures what a publish pays for a
// rate limit it stays under.
func BenchmarkThrottlePublishUnderTheLimit(b *testing.B) {
	br := benchBroker(b)
	ctx := b.Context()
	n, _ := br.ParseTopic("bench")
	if err := br.CreateTopic(ctx, n, 1); err != nil {
		b.Fatal(err)
	}
	if _, err := br.SetTopicPolicies(ctx, n, PolicyUpdate{Set: &catalogpb.Policies{PublishRateMsgs: proto.Int64(1 << 40)}}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := br.throttlePublish(ctx, n, 100, 1); err != nil {
			b.Fatal(err)
		}
	}
}

package broker

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

// BenchmarkBacklogQuotaCheck measures what a backlog quota adds to every
// publish: the cached policy lookup and the backlog estimate over the
// partition's 10 durable subscriptions and ~20 segments.
func BenchmarkBacklogQuotaCheck(b *testing.B) {
	br := benchBroker(b)
	ctx := b.Context()
	n, _ := br.ParseTopic("bench-quota")
	if err := br.CreateTopic(ctx, n, 1); err != nil {
		b.Fatal(err)
	}
	if _, err := br.SetTopicPolicies(ctx, n, PolicyUpdate{Set: &catalogpb.Policies{BacklogQuotaBytes: proto.Int64(1 << 40),
		BacklogQuotaAction: catalogpb.BacklogQuotaAction_BACKLOG_QUOTA_PRODUCER_EXCEPTION}}); err != nil {
		b.Fatal(err)
	}
	for pol, _ := br.EffectivePolicies(ctx, n); pol.BacklogQuotaBytes != 1<<40; pol, _ = br.EffectivePolicies(ctx, n) {
		time.Sleep(time.Millisecond) // the cache learns of the change from the watch
	}
	for i := range 10 {
		if _, err := br.CreateSubscription(ctx, n, 0, fmt.Sprintf("s%d", i), Earliest, nil); err != nil {
			b.Fatal(err)
		}
	}
	p, err := br.partitionFor(ctx, n, 0)
	if err != nil {
		b.Fatal(err)
	}
	for range 20 {
		if err := p.do(ctx, p.roll); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := br.checkBacklogQuota(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
}

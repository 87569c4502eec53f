package kafka

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Three franz-go consumers in one group share a topic's partitions; when
// one leaves, the others take its partitions over from its last commit.
// Every record is consumed (at least once), in order per partition, and
// the group's committed offsets are the subscription named after it: its
// lag as kadm computes it equals the subscription's backlog.
func TestFranzGoConsumerGroupRebalancesAndCommits(t *testing.T) {
	ts := newTestServer(t)
	ctx := ctxT(t)
	adm := kadm.NewClient(newClient(t, ts))
	const partitions, perPartition = 6, 50
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, "grp"); err != nil {
		t.Fatal(err)
	}
	prod := newClient(t, ts, kgo.DefaultProduceTopic("grp"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for p := range partitions {
		for i := range perPartition {
			recs = append(recs, &kgo.Record{Partition: int32(p), Value: fmt.Appendf(nil, "%d-%d", p, i)})
		}
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	seen := map[string]bool{}
	consume := func(cl *kgo.Client, stopAfter int) error {
		last := map[int32]int64{}
		n := 0
		for {
			if stopAfter > 0 && n >= stopAfter {
				return nil
			}
			mu.Lock()
			done := len(seen) == partitions*perPartition
			mu.Unlock()
			if done {
				return nil
			}
			pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			fs := cl.PollFetches(pctx)
			cancel()
			if err := ctx.Err(); err != nil {
				return err
			}
			var batch []*kgo.Record
			var orderErr error
			fs.EachRecord(func(r *kgo.Record) {
				// Each batch is committed before a rebalance may run
				// (BlockRebalanceOnPoll), so a member never sees a
				// partition's offsets go back, even across rebalances.
				if prev, ok := last[r.Partition]; ok && r.Offset <= prev && orderErr == nil {
					orderErr = fmt.Errorf("partition %d: offset %d after %d", r.Partition, r.Offset, prev)
				}
				last[r.Partition] = r.Offset
				batch = append(batch, r)
			})
			if orderErr != nil {
				return orderErr
			}
			mu.Lock()
			for _, r := range batch {
				seen[string(r.Value)] = true
			}
			mu.Unlock()
			n += len(batch)
			err := cl.CommitRecords(ctx, batch...)
			cl.AllowRebalance()
			if err != nil {
				return fmt.Errorf("commit: %w", err)
			}
		}
	}
	member := func() *kgo.Client {
		return newClient(t, ts, kgo.ConsumerGroup("cg"), kgo.ConsumeTopics("grp"), kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(2000), kgo.FetchMaxPartitionBytes(500))
	}
	members := []*kgo.Client{member(), member(), member()}
	errs := make(chan error, len(members))
	var wg sync.WaitGroup
	// The first member leaves (LeaveGroup on Close) after a few records.
	wg.Go(func() {
		err := consume(members[0], 20)
		members[0].Close()
		errs <- err
	})
	for _, m := range members[1:] {
		wg.Go(func() { errs <- consume(m, 0) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	// Every partition's committed offset is its end; 7 more records on
	// partition 0 are the group's lag and the subscription's backlog.
	more := make([]*kgo.Record, 7)
	for i := range more {
		more[i] = &kgo.Record{Partition: 0, Value: []byte("more")}
	}
	if err := prod.ProduceSync(ctx, more...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	lags, err := adm.Lag(ctx, "cg")
	if err != nil {
		t.Fatal(err)
	}
	lag := lags["cg"]
	if lag.FetchErr != nil || lag.DescribeErr != nil {
		t.Fatalf("lag: %v %v", lag.FetchErr, lag.DescribeErr)
	}
	if total := lag.Lag.Total(); total != 7 {
		t.Fatalf("group lag %d, want 7: %+v", total, lag.Lag)
	}
	name, _ := ts.s.topicName("grp")
	stats, err := ts.b.TopicStats(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var backlog int64
	for _, s := range stats.Subscriptions {
		if s.Name == "cg" {
			backlog += s.Backlog
		}
	}
	if backlog != 7 {
		t.Fatalf("backlog of subscription cg = %d, want 7 (the group's lag)", backlog)
	}
}

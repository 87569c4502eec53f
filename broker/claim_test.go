package broker

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
	"github.com/magnetar-mq/magnetar/metadata/metadatatest"
)

// sealHook runs hook after the first Seal took effect, before it returns.
type sealHook struct {
	bookie.Client
	once atomic.Bool
	hook func()
}

func (s *sealHook) Seal(ctx context.Context, segment uint64, epoch uint64, startOffset int64) (bookie.SegmentInfo, error) {
	si, err := s.Client.Seal(ctx, segment, epoch, startOffset)
	if s.once.CompareAndSwap(false, true) {
		s.hook()
	}
	return si, err
}

// Two brokers load a partition at once (one woke from a pause still
// thinking it owns it): the second claims it while the first is sealing
// what the previous owner left open, so the first's update of the row
// fails its compare-and-swap. That publish is not failed with the
// metadata's version conflict (which clients do not retry): the partition
// is loaded again, and the publish goes on.
func TestAPublishWhoseLoadLosesTheRowToAnotherLoadIsNotFailed(t *testing.T) {
	meta := metadatatest.NewStore()
	t.Cleanup(func() { meta.Close() })
	shard := &sealHook{Client: bookietest.NewFake()}
	s := stores{meta: meta, shards: bookie.OneShard("s1", shard)}
	shard.once.Store(true) // the first broker's own seals pass
	first := newBroker(t, s)
	n := topic(t, first, "raced", 1)
	publishN(t, first, n, 3, 2) // leaves its segment open, as a crash would

	second, third := newBroker(t, s), newBroker(t, s)
	shard.hook = func() {
		// The third broker claims the partition while the second seals.
		if _, err := third.TopicStats(ctxT(t), n); err != nil {
			t.Errorf("the third broker's load: %v", err)
		}
	}
	shard.once.Store(false)
	base, err := second.Publish(ctxT(t), n, 0, values("x", 0, 2))
	if err != nil {
		t.Fatalf("publish on the broker whose load lost the race: %v", err)
	}
	if base != 6 {
		t.Fatalf("stored at %d, want 6", base)
	}
	wantOffsets(t, readAll(t, second, n), 8)
}

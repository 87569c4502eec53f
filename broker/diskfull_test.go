package broker

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
	"github.com/magnetar-mq/magnetar/internal/record"
	"github.com/magnetar-mq/magnetar/metadata/metadatatest"
)

// fullShard is a segment store whose disk fills up on demand: while full
// is set it refuses segment creations and appends with bookie.ErrDiskFull
// and stores nothing, as a bookie under its free-space reserve does.
// Reads, seals and deletes go on.
type fullShard struct {
	bookie.Client
	full atomic.Bool
}

func (f *fullShard) CreateSegment(ctx context.Context, segment uint64, startOffset int64, epoch uint64) error {
	if f.full.Load() {
		return fmt.Errorf("%w: creating segment %d", bookie.ErrDiskFull, segment)
	}
	return f.Client.CreateSegment(ctx, segment, startOffset, epoch)
}

func (f *fullShard) Append(ctx context.Context, req bookie.AppendRequest) (int64, error) {
	if f.full.Load() {
		return 0, fmt.Errorf("%w: appending to segment %d", bookie.ErrDiskFull, req.Segment)
	}
	return f.Client.Append(ctx, req)
}

func newFullableStores(t *testing.T) (stores, *fullShard) {
	t.Helper()
	meta := metadatatest.NewStore()
	t.Cleanup(func() { meta.Close() })
	shard := &fullShard{Client: bookietest.NewFake()}
	return stores{meta: meta, shards: bookie.OneShard("s1", shard)}, shard
}

// readAll reads a partition from offset 0 to its end and returns the
// offsets of the records read.
func readAll(t *testing.T, b *Broker, n TopicName) []int64 {
	t.Helper()
	var offsets []int64
	for from := int64(0); ; {
		res, err := b.ReadBatches(ctxT(t), n, 0, from, 1<<20)
		if err != nil {
			t.Fatalf("reading from %d: %v", from, err)
		}
		if len(res.Batches) == 0 {
			return offsets
		}
		for _, e := range res.Batches {
			for o := e.BaseOffset; o <= e.LastOffset; o++ {
				offsets = append(offsets, o)
			}
			from = e.LastOffset + 1
		}
	}
}

// wantOffsets fails unless offsets are 0, 1, ... n-1.
func wantOffsets(t *testing.T, offsets []int64, n int) {
	t.Helper()
	if len(offsets) != n {
		t.Fatalf("read %d records, want %d", len(offsets), n)
	}
	for i, o := range offsets {
		if o != int64(i) {
			t.Fatalf("record %d has offset %d: offsets must be dense", i, o)
		}
	}
}

// The segment store's disk fills under a loaded partition: publishes fail
// with ErrDiskFull, while the partition stays loaded and readable; once
// there is room again, publishes go on at the next offset, with no gap.
func TestAFullDiskRefusesPublishesAndTheyResumeWhenSpaceReturns(t *testing.T) {
	s, shard := newFullableStores(t)
	b := newBroker(t, s)
	n := topic(t, b, "filling", 1)
	publishN(t, b, n, 5, 2)

	shard.full.Store(true)
	for range 3 {
		if _, err := b.Publish(ctxT(t), n, 0, values("x", 0, 2)); !errors.Is(err, bookie.ErrDiskFull) || errors.Is(err, ErrPartitionFailed) {
			t.Fatalf("publish on a full disk: %v, want ErrDiskFull (and the partition not failed)", err)
		}
	}
	wantOffsets(t, readAll(t, b, n), 10)
	if _, err := b.TopicStats(ctxT(t), n); err != nil {
		t.Fatalf("stats on a full disk: %v", err)
	}

	shard.full.Store(false)
	if base, err := b.Publish(ctxT(t), n, 0, values("y", 0, 2)); err != nil || base != 10 {
		t.Fatalf("publish once there is room: offset %d, %v; want 10", base, err)
	}
	wantOffsets(t, readAll(t, b, n), 12)
}

// A broker takes over a partition (after the previous owner crashed, or
// the partition was unloaded) while the segment store's disk is full:
// loading it seals the old segment and needs no new one, so the
// partition's data and stats are served; publishes fail with ErrDiskFull
// until there is room, then go on at the sealed end.
func TestAPartitionLoadsAndIsReadWhileTheDiskIsFull(t *testing.T) {
	s, shard := newFullableStores(t)
	b := newBroker(t, s)
	n := topic(t, b, "full", 1)
	publishN(t, b, n, 5, 2)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	shard.full.Store(true)

	b2 := newBroker(t, s)
	st, err := b2.TopicStats(ctxT(t), n)
	if err != nil {
		t.Fatalf("stats of a partition loaded on a full disk: %v", err)
	}
	if end := st.Partitions[0].EndOffset; end != 10 {
		t.Fatalf("end offset %d after the takeover, want 10", end)
	}
	wantOffsets(t, readAll(t, b2, n), 10)
	if _, err := b2.Publish(ctxT(t), n, 0, values("x", 0, 2)); !errors.Is(err, bookie.ErrDiskFull) {
		t.Fatalf("publish on a full disk: %v, want ErrDiskFull", err)
	}

	shard.full.Store(false)
	if base, err := b2.Publish(ctxT(t), n, 0, values("y", 0, 2)); err != nil || base != 10 {
		t.Fatalf("publish once there is room: offset %d, %v; want 10", base, err)
	}
	wantOffsets(t, readAll(t, b2, n), 12)
}

// An idempotent producer's batch refused by a full disk was not stored:
// the same batch sent again once there is room is stored (not answered
// as a duplicate of the refusal), once.
func TestARetryOfABatchRefusedByAFullDiskIsStoredOnce(t *testing.T) {
	s, shard := newFullableStores(t)
	b := newBroker(t, s)
	n := topic(t, b, "retried", 1)
	pid, err := b.NewProducerID(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	send := func(seq uint64) (int64, error) {
		f, err := b.PublishSequencedAsync(ctxT(t), n, 0, pid, seq, values("s", int(seq), 2))
		if err != nil {
			return 0, err
		}
		return f.Wait(ctxT(t))
	}
	if base, err := send(0); err != nil || base != 0 {
		t.Fatalf("first send: %d, %v", base, err)
	}
	shard.full.Store(true)
	if _, err := send(2); !errors.Is(err, bookie.ErrDiskFull) {
		t.Fatalf("send on a full disk: %v, want ErrDiskFull", err)
	}
	shard.full.Store(false)
	if base, err := send(2); err != nil || base != 2 {
		t.Fatalf("the same send once there is room: %d, %v; want stored at 2", base, err)
	}
	if base, err := send(2); err != nil || base != 2 {
		t.Fatalf("the send repeated after it was stored: %d, %v; want the first answer, 2", base, err)
	}
	wantOffsets(t, readAll(t, b, n), 4)
}

// heldShard refuses the next append with bookie.ErrDiskFull, once it is
// released, and lets the later ones through: a disk that was full for
// one append.
type heldShard struct {
	bookie.Client
	entered chan struct{} // receives once the refused append has come
	release chan struct{} // closed to refuse it
	refused atomic.Bool
}

func (h *heldShard) Append(ctx context.Context, req bookie.AppendRequest) (int64, error) {
	if h.refused.CompareAndSwap(false, true) {
		h.entered <- struct{}{}
		<-h.release
		return 0, fmt.Errorf("%w: appending to segment %d", bookie.ErrDiskFull, req.Segment)
	}
	return h.Client.Append(ctx, req)
}

// A Kafka producer pipelines batches A and B. A is refused by a full disk
// while B waits behind it; when B's turn comes the disk has room. B must
// not be stored before A: the producer sends A again, and with B stored A
// would be behind the last stored sequence, answered DUPLICATE_SEQUENCE,
// which Kafka clients take for success, and A would be lost. So B fails
// with A's error; both are sent again, in order, and stored once each.
func TestABatchQueuedBehindOneRefusedByAFullDiskIsRefusedToo(t *testing.T) {
	meta := metadatatest.NewStore()
	t.Cleanup(func() { meta.Close() })
	shard := &heldShard{Client: bookietest.NewFake(), entered: make(chan struct{}), release: make(chan struct{})}
	b := newBroker(t, stores{meta: meta, shards: bookie.OneShard("s1", shard)})
	n := topic(t, b, "pipelined", 1)
	pid, err := b.NewProducerID(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	fa, err := b.AppendBatch(ctxT(t), n, 0, producerBatch(t, pid, 0, 0, 2, record.CodecNone))
	if err != nil {
		t.Fatal(err)
	}
	<-shard.entered // A is being appended
	fb, err := b.AppendBatch(ctxT(t), n, 0, producerBatch(t, pid, 0, 2, 2, record.CodecNone))
	if err != nil {
		t.Fatal(err)
	}
	close(shard.release)
	if _, err := fa.Wait(ctxT(t)); !errors.Is(err, bookie.ErrDiskFull) {
		t.Fatalf("A: %v, want ErrDiskFull", err)
	}
	if _, err := fb.Wait(ctxT(t)); !errors.Is(err, bookie.ErrDiskFull) {
		t.Fatalf("B, queued behind the refused A: %v, want it refused too (ErrDiskFull)", err)
	}
	// The producer sends both again, in order.
	if base, err := appendWait(t, b, n, producerBatch(t, pid, 0, 0, 2, record.CodecNone)); err != nil || base != 0 {
		t.Fatalf("A again: offset %d, %v; want stored at 0", base, err)
	}
	if base, err := appendWait(t, b, n, producerBatch(t, pid, 0, 2, 2, record.CodecNone)); err != nil || base != 2 {
		t.Fatalf("B again: offset %d, %v; want stored at 2", base, err)
	}
	wantOffsets(t, readAll(t, b, n), 4)
}

// A producer's batch A is refused by a full disk; its next batch B was
// sent before the producer learnt of it. B is refused too (not stored
// after the gap A left), and both, sent again in order once there is
// room, are stored once each, in order. A native producer that gives up
// on a refused batch goes on under a new producer ID.
func TestABatchSentAfterARefusedOneIsRefusedUntilThatOneIsSentAgain(t *testing.T) {
	for _, mode := range []string{"kafka", "native"} {
		t.Run(mode, func(t *testing.T) {
			s, shard := newFullableStores(t)
			b := newBroker(t, s)
			n := topic(t, b, "after-refusal", 1)
			pid, err := b.NewProducerID(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			send := func(seq int32) (int64, error) {
				var f Future
				var err error
				if mode == "kafka" {
					f, err = b.AppendBatch(ctxT(t), n, 0, producerBatch(t, pid, 0, seq, 2, record.CodecNone))
				} else {
					f, err = b.PublishSequencedAsync(ctxT(t), n, 0, pid, uint64(seq), values("s", int(seq), 2))
				}
				if err != nil {
					return 0, err
				}
				return f.Wait(ctxT(t))
			}
			if base, err := send(0); err != nil || base != 0 {
				t.Fatalf("first send: %d, %v", base, err)
			}
			shard.full.Store(true)
			if _, err := send(2); !errors.Is(err, bookie.ErrDiskFull) {
				t.Fatalf("A on a full disk: %v, want ErrDiskFull", err)
			}
			shard.full.Store(false)
			if _, err := send(4); !errors.Is(err, bookie.ErrDiskFull) {
				t.Fatalf("B, sent before the producer learnt that A was refused: %v, want refused (ErrDiskFull) until A is sent again", err)
			}
			if base, err := send(2); err != nil || base != 2 {
				t.Fatalf("A again: %d, %v; want stored at 2", base, err)
			}
			if base, err := send(4); err != nil || base != 4 {
				t.Fatalf("B again: %d, %v; want stored at 4", base, err)
			}
			shard.full.Store(true)
			if _, err := send(6); !errors.Is(err, bookie.ErrDiskFull) {
				t.Fatalf("C on a full disk: %v, want ErrDiskFull", err)
			}
			shard.full.Store(false)
			if mode == "native" { // a native producer gives up on C and goes on
				if _, err := send(8); !errors.Is(err, bookie.ErrDiskFull) {
					t.Fatalf("D right after C was refused: %v, want refused", err)
				}
				// Under its ID, D would leave a gap where C was: out of
				// order. The producer goes on under a new ID.
				if _, err := send(8); !errors.Is(err, ErrOutOfOrderSequence) {
					t.Fatalf("D sent again, C given up, same producer id: %v, want ErrOutOfOrderSequence", err)
				}
				if pid, err = b.NewProducerID(ctxT(t)); err != nil {
					t.Fatal(err)
				}
				if base, err := send(8); err != nil || base != 6 {
					t.Fatalf("D under a new producer id: %d, %v; want stored at 6", base, err)
				}
			}
		})
	}
}

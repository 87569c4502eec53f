package broker

import (
	"errors"
	"testing"

	"github.com/magnetar-mq/magnetar/internal/record"
)

func publishSeq(t *testing.T, b *Broker, n TopicName, pid int64, seq uint64, count int) (int64, error) {
	t.Helper()
	f, err := b.PublishSequencedAsync(ctxT(t), n, 0, pid, seq, values("s", int(seq), count))
	if err != nil {
		return 0, err
	}
	return f.Wait(ctxT(t))
}

func TestNativeProducerSequences(t *testing.T) {
	t.Parallel()
	b := newBroker(t, newStores(t))
	n := topic(t, b, "native-idem", 1)
	pid, err := b.NewProducerID(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	must := func(seq uint64, cnt int, wantBase int64) {
		t.Helper()
		if base, err := publishSeq(t, b, n, pid, seq, cnt); err != nil || base != wantBase {
			t.Fatalf("seq %d: base %d, %v; want %d", seq, base, err, wantBase)
		}
	}
	must(0, 2, 0)
	must(2, 3, 2)
	must(0, 2, 0) // a retry: the original offset, nothing stored
	// A jump is out of order, never taken for an old retry: a stranger who
	// jumped a producer's numbers ahead would have made its next batches
	// "duplicates", acknowledged and never stored.
	if _, err := publishSeq(t, b, n, pid, 1<<29, 1); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("a jump to 2^29: %v, want ErrOutOfOrderSequence", err)
	}
	// A batch refused for good still counts: the next one follows it, and
	// a resend of it is refused again.
	tooLarge := make([]record.Record, 2)
	for i := range tooLarge {
		tooLarge[i].Value = make([]byte, b.cfg.MaxMessageBytes)
	}
	for range 2 {
		if _, err := b.PublishSequencedAsync(ctxT(t), n, 0, pid, 5, tooLarge); !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("a batch too large: %v, want ErrMessageTooLarge", err)
		}
	}
	must(7, 1, 5)
	for seq := uint64(8); seq < 8+recentBatches; seq++ {
		must(seq, 1, int64(seq)-2)
	}
	if _, err := publishSeq(t, b, n, pid, 7, 1); !errors.Is(err, ErrDuplicateSequence) {
		t.Fatalf("a retry older than the last %d batches: %v, want ErrDuplicateSequence", recentBatches, err)
	}
	if _, end, _ := b.PartitionOffsets(ctxT(t), n, 0); end != 6+recentBatches {
		t.Fatalf("end offset %d, want %d: a retry was stored", end, 6+recentBatches)
	}
	// Sequences wrap at 2^31 like Kafka's (a new producer may start anywhere).
	if pid, err = b.NewProducerID(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	must(1<<31-1, 2, 6+recentBatches)
	must(1<<31+1, 1, 8+recentBatches)
	must(1<<31-1, 2, 6+recentBatches)
	if _, err := publishSeq(t, b, n, pid, 1<<31-5, 1); !errors.Is(err, ErrDuplicateSequence) {
		t.Fatalf("a number before the wrap: %v, want ErrDuplicateSequence", err)
	}
}

// A new owner (after a crash or a move) rebuilds the producers' state from
// the log: a producer resending what it had no answer for gets the
// original offsets, and nothing is stored twice.
func TestProducerSequencesSurviveAnOwnerChange(t *testing.T) {
	t.Parallel()
	s := newStores(t)
	a := newBroker(t, s)
	n := topic(t, a, "idem-move", 1)
	native, err := a.NewProducerID(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	kafka, err := a.NewProducerID(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for i := range 4 {
		base, err := publishSeq(t, a, n, native, uint64(3*i), 3)
		if err != nil {
			t.Fatal(err)
		}
		kbase, err := appendWait(t, a, n, producerBatch(t, kafka, 2, int32(2*i), 2, record.CodecNone))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, base, kbase)
	}
	// a is fenced off without a chance to close (as in a crash).
	b := newBroker(t, s)
	for i := range 4 {
		base, err := publishSeq(t, b, n, native, uint64(3*i), 3)
		if err != nil || base != want[2*i] {
			t.Fatalf("native resend %d: base %d, %v; want %d", i, base, err, want[2*i])
		}
		kbase, err := appendWait(t, b, n, producerBatch(t, kafka, 2, int32(2*i), 2, record.CodecNone))
		if err != nil || kbase != want[2*i+1] {
			t.Fatalf("kafka resend %d: base %d, %v; want %d", i, kbase, err, want[2*i+1])
		}
	}
	if _, end, _ := b.PartitionOffsets(ctxT(t), n, 0); end != 20 {
		t.Fatalf("end offset %d, want 20: a resend was stored again", end)
	}
	// The Kafka producer's state came back whole: its epoch is fenced and a
	// gap is refused.
	if _, err := appendWait(t, b, n, producerBatch(t, kafka, 1, 8, 1, record.CodecNone)); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("old epoch after the move: %v, want ErrInvalidProducerEpoch", err)
	}
	if _, err := appendWait(t, b, n, producerBatch(t, kafka, 2, 9, 1, record.CodecNone)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("a gap after the move: %v, want ErrOutOfOrderSequence", err)
	}
	if base, err := publishSeq(t, b, n, native, 12, 1); err != nil || base != 20 {
		t.Fatalf("next native batch: base %d, %v; want 20", base, err)
	}
}

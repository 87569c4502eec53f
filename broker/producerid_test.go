package broker

import (
	"errors"
	"testing"

	"github.com/magnetar-mq/magnetar/internal/record"
)

// TestAProducerIDServesOnlyTheRoleItWasIssuedTo is the hijack of issue 15
// over Kafka: a stranger who sends a batch under another producer's ID
// (guessed: IDs used to be small sequential numbers) and its next
// sequence would have made that producer's next batch a "duplicate",
// acknowledged and never stored. The stranger is now refused, and the
// producer's batches are stored.
func TestAProducerIDServesOnlyTheRoleItWasIssuedTo(t *testing.T) {
	t.Parallel()
	b := newBroker(t, newStores(t))
	n := topic(t, b, "hijack", 1)
	alice := as(t, "alice")
	pid, err := b.NewProducerID(alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CheckProducerID(alice, pid); err != nil {
		t.Fatalf("alice's own id: %v", err)
	}
	send := func(role string, seq int32) error {
		t.Helper()
		f, err := b.AppendBatch(as(t, role), n, 0, producerBatch(t, pid, 0, seq, 1, record.CodecNone))
		if err != nil {
			return err
		}
		_, err = f.Wait(ctxT(t))
		return err
	}
	if err := send("alice", 0); err != nil {
		t.Fatal(err)
	}
	if err := send("mallory", 1); !errors.Is(err, ErrUnknownProducerID) {
		t.Fatalf("mallory's batch under alice's id: %v, want ErrUnknownProducerID", err)
	}
	if err := send("alice", 1); err != nil {
		t.Fatalf("alice's next batch: %v", err)
	}
	if _, end, _ := b.PartitionOffsets(ctxT(t), n, 0); end != 2 {
		t.Fatalf("end offset %d, want 2: alice's two batches", end)
	}
	for _, forged := range []int64{1, 2, 1 << 32, pid + 1, pid ^ 1<<40} {
		if err := b.CheckProducerID(alice, forged); !errors.Is(err, ErrUnknownProducerID) {
			t.Errorf("forged id %d: %v", forged, err)
		}
	}
	other, err := b.NewProducerID(alice)
	if err != nil || other == pid {
		t.Fatalf("a second id %d (%v), first %d", other, err, pid)
	}
}

// TestABatchUnderNumbersAnotherBatchUsedIsRefused: a client of the same
// role (every client, without authentication) can read a producer's ID
// and numbers in the batches it fetches. If it sends a batch under the
// producer's next numbers first, the producer's own batch is no retry of
// it: it is refused (out of order), never answered with the stranger's
// offset or taken for an old duplicate.
func TestABatchUnderNumbersAnotherBatchUsedIsRefused(t *testing.T) {
	t.Parallel()
	b := newBroker(t, newStores(t))
	n := topic(t, b, "same-role", 1)
	pid, err := b.NewProducerID(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	send := func(seq int32, records int, value string) (int64, error) {
		t.Helper()
		batch, err := record.AppendBatch(nil, record.BatchOptions{Producer: &record.Producer{ID: pid, BaseSequence: seq}},
			values(value, int(seq), records))
		if err != nil {
			t.Fatal(err)
		}
		f, err := b.AppendBatch(ctxT(t), n, 0, batch)
		if err != nil {
			return 0, err
		}
		return f.Wait(ctxT(t))
	}
	if _, err := send(0, 2, "own"); err != nil {
		t.Fatal(err)
	}
	if _, err := send(2, 2, "stranger"); err != nil { // the producer's next numbers, first
		t.Fatal(err)
	}
	if _, err := send(2, 2, "own"); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("the producer's batch under numbers the stranger used: %v, want ErrOutOfOrderSequence", err)
	}
	if _, err := send(2, 1, "own"); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("a batch inside the remembered numbers, not a retry of one: %v, want ErrOutOfOrderSequence", err)
	}
	if base, err := send(0, 2, "own"); err != nil || base != 0 {
		t.Fatalf("a true retry of the first batch: %d, %v; want its offset 0", base, err)
	}
}

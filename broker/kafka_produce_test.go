package broker

import (
	"bytes"
	"errors"
	"testing"

	"github.com/magnetar-mq/magnetar/internal/record"
)

// producerBatch encodes n records as an idempotent producer would.
func producerBatch(t *testing.T, pid int64, epoch int16, seq int32, n int, codec record.Codec) []byte {
	t.Helper()
	opts := record.BatchOptions{Codec: codec}
	if pid >= 0 {
		opts.Producer = &record.Producer{ID: pid, Epoch: epoch, BaseSequence: seq}
	}
	b, err := record.AppendBatch(nil, opts, values("v", int(seq), n))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func appendWait(t *testing.T, b *Broker, n TopicName, batch []byte) (int64, error) {
	t.Helper()
	f, err := b.AppendBatch(ctxT(t), n, 0, batch)
	if err != nil {
		return 0, err
	}
	return f.Wait(ctxT(t))
}

func TestAppendBatchStoresTheProducersBytesAndReadsThemBack(t *testing.T) {
	t.Parallel()
	b := newBroker(t, newStores(t))
	n := topic(t, b, "raw", 1)
	var sent [][]byte
	for i, codec := range []record.Codec{record.CodecNone, record.CodecGzip, record.CodecSnappy, record.CodecLZ4, record.CodecZstd} {
		batch := producerBatch(t, -1, -1, -1, 3, codec)
		sent = append(sent, bytes.Clone(batch))
		base, err := appendWait(t, b, n, batch)
		if err != nil {
			t.Fatalf("%v: %v", codec, err)
		}
		if want := int64(3 * i); base != want {
			t.Fatalf("%v: base offset %d, want %d", codec, base, want)
		}
	}
	// Read from the middle of the second batch: that batch comes first.
	res, err := b.ReadBatches(ctxT(t), n, 0, 4, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if res.HighWatermark != 15 || res.LogStart != 0 {
		t.Fatalf("high watermark %d, log start %d; want 15, 0", res.HighWatermark, res.LogStart)
	}
	if len(res.Batches) != 4 || res.Batches[0].BaseOffset != 3 {
		t.Fatalf("got %d batches starting at %d, want 4 starting at 3", len(res.Batches), res.Batches[0].BaseOffset)
	}
	for i, e := range res.Batches {
		want := bytes.Clone(sent[i+1])
		record.SetBaseOffset(want, int64(3*(i+1)))
		if !bytes.Equal(e.Data, want) {
			t.Fatalf("batch %d is not stored byte for byte as produced", i+1)
		}
	}
}

func TestAppendBatchRejectsBadBatches(t *testing.T) {
	t.Parallel()
	b := newBroker(t, newStores(t), func(c *Config) { c.MaxMessageBytes = 200 })
	n := topic(t, b, "bad", 1)
	good := producerBatch(t, -1, -1, -1, 1, record.CodecNone)
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)-1] ^= 0xff
	big := producerBatch(t, -1, -1, -1, 20, record.CodecNone)
	two := append(bytes.Clone(good), good...)
	for _, tc := range []struct {
		name  string
		batch []byte
		want  error
	}{
		{"a flipped byte fails the CRC", corrupt, ErrCorruptBatch},
		{"a batch over max-message-bytes is too large", big, ErrMessageTooLarge},
		{"two batches in one record set are refused", two, ErrCorruptBatch},
		{"a truncated batch is corrupt", good[:40], ErrCorruptBatch},
	} {
		if _, err := b.AppendBatch(ctxT(t), n, 0, tc.batch); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestReadBatchesBoundsAndWaiting(t *testing.T) {
	t.Parallel()
	b := newBroker(t, newStores(t))
	n := topic(t, b, "bounds", 1)
	if _, err := appendWait(t, b, n, producerBatch(t, -1, -1, -1, 2, record.CodecNone)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ReadBatches(ctxT(t), n, 0, 3, 1<<20); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("past the end: %v, want ErrOffsetOutOfRange", err)
	}
	if _, err := b.ReadBatches(ctxT(t), n, 0, -1, 1<<20); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("before the start: %v, want ErrOffsetOutOfRange", err)
	}
	res, err := b.ReadBatches(ctxT(t), n, 0, 2, 1<<20)
	if err != nil || len(res.Batches) != 0 {
		t.Fatalf("at the end: %d batches, %v; want none and no error", len(res.Batches), err)
	}
	if _, err := appendWait(t, b, n, producerBatch(t, -1, -1, -1, 1, record.CodecNone)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-res.Changed:
	case <-ctxT(t).Done():
		t.Fatal("Changed was not closed by a new append")
	}
	res, err = b.ReadBatches(ctxT(t), n, 0, 2, 1<<20)
	if err != nil || len(res.Batches) != 1 || res.HighWatermark != 3 {
		t.Fatalf("after the append: %d batches, high watermark %d, %v", len(res.Batches), res.HighWatermark, err)
	}
}

func TestIdempotentProducerSequences(t *testing.T) {
	t.Parallel()
	b := newBroker(t, newStores(t))
	n := topic(t, b, "idem", 1)
	pid, err := b.NewProducerID(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if pid2, err := b.NewProducerID(ctxT(t)); err != nil || pid2 == pid {
		t.Fatalf("second producer id %d (%v) repeats %d", pid2, err, pid)
	}
	must := func(seq int32, cnt int, wantBase int64) {
		t.Helper()
		base, err := appendWait(t, b, n, producerBatch(t, pid, 0, seq, cnt, record.CodecNone))
		if err != nil || base != wantBase {
			t.Fatalf("seq %d: base %d, %v; want %d", seq, base, err, wantBase)
		}
	}
	must(0, 2, 0)
	must(2, 3, 2)
	// A retry of a remembered batch answers the original offset and stores nothing.
	must(0, 2, 0)
	must(2, 3, 2)
	if _, end, _ := b.PartitionOffsets(ctxT(t), n, 0); end != 5 {
		t.Fatalf("retries were stored: end offset %d, want 5", end)
	}
	if _, err := appendWait(t, b, n, producerBatch(t, pid, 0, 7, 1, record.CodecNone)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("a gap: %v, want ErrOutOfOrderSequence", err)
	}
	for seq := int32(5); seq < 5+recentBatches; seq++ {
		must(seq, 1, int64(seq))
	}
	if _, err := appendWait(t, b, n, producerBatch(t, pid, 0, 2, 3, record.CodecNone)); !errors.Is(err, ErrDuplicateSequence) {
		t.Fatalf("a retry older than the last %d batches: %v, want ErrDuplicateSequence", recentBatches, err)
	}
	// A new epoch starts at 0; the old epoch is fenced.
	if _, err := appendWait(t, b, n, producerBatch(t, pid, 1, 4, 1, record.CodecNone)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("new epoch not at 0: %v, want ErrOutOfOrderSequence", err)
	}
	base, err := appendWait(t, b, n, producerBatch(t, pid, 1, 0, 1, record.CodecNone))
	if err != nil || base != 5+recentBatches {
		t.Fatalf("new epoch: base %d, %v; want %d", base, err, 5+recentBatches)
	}
	if _, err := appendWait(t, b, n, producerBatch(t, pid, 0, 10, 1, record.CodecNone)); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("old epoch: %v, want ErrInvalidProducerEpoch", err)
	}
}

func TestOffsetForTimestamp(t *testing.T) {
	t.Parallel()
	b := newBroker(t, newStores(t))
	n := topic(t, b, "times", 1)
	for _, ts := range [][]int64{{10, 20}, {30, 25}, {40}} {
		recs := make([]record.Record, len(ts))
		for i := range ts {
			recs[i] = record.Record{Value: []byte("x"), Timestamp: ts[i]}
		}
		batch, err := record.AppendBatch(nil, record.BatchOptions{}, recs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := appendWait(t, b, n, batch); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		ts, wantOffset, wantTS int64
		found                  bool
	}{
		{0, 0, 10, true},
		{15, 1, 20, true},
		{21, 2, 30, true}, // the first record at or after 21 in offset order
		{26, 2, 30, true},
		{35, 4, 40, true},
		{41, 0, 0, false},
		{MaxTimestamp, 4, 40, true},
	} {
		off, ts, found, err := b.OffsetForTimestamp(ctxT(t), n, 0, tc.ts)
		if err != nil || off != tc.wantOffset || ts != tc.wantTS || found != tc.found {
			t.Errorf("ts %d: offset %d ts %d found %v (%v); want %d %d %v", tc.ts, off, ts, found, err, tc.wantOffset, tc.wantTS, tc.found)
		}
	}
}

func TestAddPartitions(t *testing.T) {
	t.Parallel()
	b := newBroker(t, newStores(t))
	n := topic(t, b, "grow", 1)
	if err := b.AddPartitions(ctxT(t), n, 3); err != nil {
		t.Fatal(err)
	}
	if info, err := b.Topic(ctxT(t), n, false); err != nil || info.Partitions != 3 {
		t.Fatalf("partitions %d, %v; want 3", info.Partitions, err)
	}
	if err := b.AddPartitions(ctxT(t), n, 2); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("shrinking: %v, want ErrInvalidArgument", err)
	}
	if _, err := appendWait(t, b, n, producerBatch(t, -1, -1, -1, 1, record.CodecNone)); err != nil {
		t.Fatal(err)
	}
}

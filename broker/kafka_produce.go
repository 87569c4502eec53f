package broker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"weak"

	"github.com/magnetar-mq/magnetar/internal/record"
	"github.com/magnetar-mq/magnetar/metadata/catalog"
)

// AppendBatch queues one RecordBatch v2 exactly as a producer encoded it
// (a Kafka produce request's record set) for the partition, and returns
// the Future of its append; the batch is stored as is, with only its base
// offset rewritten. The broker keeps batch: the caller must not touch it
// afterwards.
//
// The batch is validated here, once: it must be a single batch no larger
// than MaxMessageBytes (else ErrMessageTooLarge) with a good CRC, magic 2,
// records that decode and dense offset deltas (else ErrCorruptBatch).
// Control and transactional batches are refused (ErrInvalidArgument):
// transactions are not supported.
//
// A batch from an idempotent producer (producer ID >= 0) is checked against
// the producer's sequence on this partition: a retry of one of its last
// five batches gets that batch's Future again (so the retry learns the
// original offset and nothing is stored twice), an older one
// ErrDuplicateSequence, a gap ErrOutOfOrderSequence and an older producer
// epoch ErrInvalidProducerEpoch. A producer the partition does not know
// yet (new, or the partition was reloaded since) is accepted at any
// sequence, as Kafka does. The sequence state lives in memory with the
// loaded partition and is not rebuilt from the log on reload: a retry that
// crosses a partition reload may be stored twice.
func (b *Broker) AppendBatch(ctx context.Context, name TopicName, partition int32, batch []byte) (Future, error) {
	if len(batch) > b.cfg.MaxMessageBytes {
		return Future{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrMessageTooLarge, len(batch), b.cfg.MaxMessageBytes)
	}
	h, err := record.Validate(batch)
	switch {
	case errors.Is(err, record.ErrTooLarge):
		return Future{}, fmt.Errorf("%w: %w", ErrMessageTooLarge, err)
	case err != nil:
		return Future{}, fmt.Errorf("%w: %w", ErrCorruptBatch, err)
	case h.Size() != len(batch):
		return Future{}, fmt.Errorf("%w: %d bytes after the batch", ErrCorruptBatch, len(batch)-h.Size())
	case h.IsControl():
		return Future{}, fmt.Errorf("%w: producers may not send control batches", ErrInvalidArgument)
	case h.IsTransactional():
		return Future{}, fmt.Errorf("%w: transactions are not supported", ErrInvalidArgument)
	}
	p, err := b.partitionFor(ctx, name, partition)
	if err != nil {
		return Future{}, err
	}
	count := int64(h.LastOffsetDelta) + 1
	if h.ProducerID < 0 {
		return p.publish(ctx, batch, count)
	}
	seqs := producerSeqsOf(p)
	seqs.mu.Lock()
	defer seqs.mu.Unlock()
	st, dup, err := seqs.checkLocked(h)
	if dup != nil || err != nil {
		if dup != nil {
			return *dup, nil
		}
		return Future{}, err
	}
	f, err := p.publish(ctx, batch, count)
	if err != nil {
		return Future{}, err
	}
	seqs.recordLocked(h, st, f)
	return f, nil
}

// NewProducerID returns a cluster-unique producer ID for an idempotent
// Kafka producer. IDs come from the metadata store's segment-ID counter,
// which is durable and never hands out a value twice; sharing it costs
// nothing but gaps in both sequences.
func (b *Broker) NewProducerID(ctx context.Context) (int64, error) {
	id, err := b.cat.NextSegmentID(ctx)
	if err != nil {
		return 0, wrapMeta("allocate producer id", err)
	}
	if id > math.MaxInt64 {
		return 0, fmt.Errorf("broker: producer id counter exhausted")
	}
	return int64(id), nil
}

// recentBatches is how many of a producer's last batches a partition
// remembers to answer retries, as Kafka does.
const recentBatches = 5

// producerSeqs is the idempotent producers' state of one loaded partition.
// Its mu is held from the sequence check until the batch is queued, so the
// partition stores a producer's batches in sequence order.
type producerSeqs struct {
	mu struct {
		sync.Mutex
		producers map[int64]*producerSeq
	}
}

type producerSeq struct {
	epoch  int16
	recent []seqBatch // oldest first, at most recentBatches
}

type seqBatch struct {
	first, last int32
	f           Future
}

// seqTables attaches producer state to loaded partitions without a field in
// partition: an entry lives as long as its partition, because the key is a
// weak pointer and a cleanup deletes it once the partition is collected. A
// reloaded partition is a new object, so it starts with no state. (When
// partition.go is next reworked this belongs in the partition itself.)
var seqTables sync.Map // weak.Pointer[partition] -> *producerSeqs

func producerSeqsOf(p *partition) *producerSeqs {
	wp := weak.Make(p)
	if v, ok := seqTables.Load(wp); ok {
		return v.(*producerSeqs)
	}
	s := &producerSeqs{}
	s.mu.producers = make(map[int64]*producerSeq)
	v, loaded := seqTables.LoadOrStore(wp, s)
	if !loaded {
		runtime.AddCleanup(p, func(wp weak.Pointer[partition]) { seqTables.Delete(wp) }, wp)
	}
	return v.(*producerSeqs)
}

// lastSeq is the sequence number of a batch's last record; sequences wrap
// from MaxInt32 to 0.
func lastSeq(h record.BatchHeader) int32 {
	return int32((int64(h.BaseSequence) + int64(h.LastOffsetDelta)) % (math.MaxInt32 + 1))
}

func nextSeq(s int32) int32 {
	if s == math.MaxInt32 {
		return 0
	}
	return s + 1
}

// checkLocked decides whether the batch may be appended. It returns the
// producer's state (nil for a producer seen for the first time), or the
// Future of the batch this one retries, or the error to answer.
func (s *producerSeqs) checkLocked(h record.BatchHeader) (*producerSeq, *Future, error) {
	st := s.mu.producers[h.ProducerID]
	if st == nil {
		return nil, nil, nil
	}
	switch {
	case h.ProducerEpoch < st.epoch:
		return nil, nil, fmt.Errorf("%w: producer %d epoch %d, current %d", ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, st.epoch)
	case h.ProducerEpoch > st.epoch:
		if h.BaseSequence != 0 {
			return nil, nil, fmt.Errorf("%w: producer %d starts epoch %d at sequence %d, not 0", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		return st, nil, nil
	}
	last := lastSeq(h)
	for i := range st.recent {
		if r := &st.recent[i]; r.first == h.BaseSequence && r.last == last {
			return nil, &r.f, nil
		}
	}
	if len(st.recent) == 0 {
		return st, nil, nil
	}
	prev := st.recent[len(st.recent)-1].last
	if h.BaseSequence == nextSeq(prev) {
		return st, nil, nil
	}
	// Behind the last sequence (modulo wrap-around): an old retry we no
	// longer remember; ahead of it: batches are missing.
	if d := int64(prev) - int64(h.BaseSequence); (d >= 0 && d < math.MaxInt32/2) || d < -math.MaxInt32/2 {
		return nil, nil, fmt.Errorf("%w: producer %d sequence %d, last stored %d", ErrDuplicateSequence, h.ProducerID, h.BaseSequence, prev)
	}
	return nil, nil, fmt.Errorf("%w: producer %d sequence %d, expected %d", ErrOutOfOrderSequence, h.ProducerID, h.BaseSequence, nextSeq(prev))
}

// recordLocked remembers a queued batch.
func (s *producerSeqs) recordLocked(h record.BatchHeader, st *producerSeq, f Future) {
	if st == nil {
		st = &producerSeq{epoch: h.ProducerEpoch}
		s.mu.producers[h.ProducerID] = st
	}
	if h.ProducerEpoch != st.epoch {
		st.epoch = h.ProducerEpoch
		st.recent = st.recent[:0]
	}
	if len(st.recent) == recentBatches {
		copy(st.recent, st.recent[1:])
		st.recent = st.recent[:recentBatches-1]
	}
	st.recent = append(st.recent, seqBatch{first: h.BaseSequence, last: lastSeq(h), f: f})
}

// AddPartitions raises a topic's partition count to total. Partitions are
// only ever added; the new ones are empty.
func (b *Broker) AddPartitions(ctx context.Context, name TopicName, total int32) error {
	if total > MaxPartitions {
		return fmt.Errorf("%w: at most %d partitions, asked for %d", ErrInvalidArgument, MaxPartitions, total)
	}
	for {
		e, ok, err := b.cat.Topics.Get(ctx, name.catName())
		if err != nil {
			return wrapMeta("get topic", err)
		}
		if !ok {
			return fmt.Errorf("%w: %s", ErrTopicNotFound, name)
		}
		if total <= e.Value.Partitions {
			return fmt.Errorf("%w: %s has %d partitions, asked for %d: partitions can only be added", ErrInvalidArgument, name, e.Value.Partitions, total)
		}
		e.Value.Partitions = total
		_, err = b.cat.Topics.Update(ctx, name.catName(), e.Value, e.Version)
		if errors.Is(err, catalog.ErrConflict) {
			continue // changed since we read it
		}
		if errors.Is(err, catalog.ErrNotFound) {
			return fmt.Errorf("%w: %s", ErrTopicNotFound, name)
		}
		if err != nil {
			return wrapMeta("update topic", err)
		}
		b.log.Info("partitions added", "topic", name.String(), "partitions", total)
		return nil
	}
}

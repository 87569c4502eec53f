package broker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/magnetar-mq/magnetar/internal/record"
)

// De-duplication of idempotent producers. A producer that may send a batch
// twice (a retry after a lost answer, a resend after its connection broke
// or the partition moved) tags each batch with its producer ID and the
// sequence number of its first record; the partition remembers each
// producer's last batches and answers a retry with the original outcome
// instead of storing it again.
//
// The state lives with the loaded partition and is rebuilt from the tail
// of the log the first time an idempotent batch comes after a load, so a
// retry that crosses a broker crash or an ownership move is still found.

const (
	// recentBatches is how many of a producer's last batches a partition
	// remembers to answer retries with their offsets. Kafka producers keep
	// at most 5 batches in flight; native producers may have more, and a
	// retry of an older one is answered as a duplicate without its offset.
	recentBatches = 16
	// seqScanBytes bounds how much of the log's tail a partition reads to
	// rebuild its producers' state after a load.
	seqScanBytes = 8 << 20
)

// producerSeqs is the idempotent producers' state of one loaded partition.
// Its mu is held from the sequence check until the batch is queued, so the
// partition stores a producer's batches in sequence order.
type producerSeqs struct {
	mu        sync.Mutex
	rebuilt   bool // the log's tail has been read
	producers map[int64]*producerSeq
}

type producerSeq struct {
	epoch  int16
	recent []seqBatch // oldest first, at most recentBatches
}

type seqBatch struct {
	first, last int32
	// crc is the batch's CRC: a retry is the same batch, byte for byte
	// (a native client sends its messages again with the timestamps it
	// gave them), so a batch under the same numbers with another CRC is
	// not a retry but another producer's use of the ID.
	crc uint32
	f   Future
}

// sequencing says how a partition treats an idempotent producer's
// batches. Both kinds must number their batches contiguously: a batch that
// does not start right after the last one is ErrOutOfOrderSequence (a
// jump is never taken for a retry of something old, which would answer
// the producer's real batches as duplicates, never stored).
type sequencing int

const (
	// kafkaSeq (Kafka producers): a batch refused for good leaves no
	// trace; the producer bumps its epoch or gets a new ID (KIP-360).
	kafkaSeq sequencing = iota
	// nativeSeq (native producers): a batch refused for good (backlog
	// quota, too large) is remembered as refused, so the producer's next
	// batch, numbered after it, follows on, and a resend of it is refused
	// again.
	nativeSeq
)

// appendIdempotent queues a batch of an idempotent producer (h.ProducerID
// >= 0), or returns the Future of the batch it retries.
func (p *partition) appendIdempotent(ctx context.Context, batch []byte, h record.BatchHeader, mode sequencing) (Future, error) {
	s := &p.seqs
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.rebuilt {
		if err := p.rebuildSeqsLocked(ctx); err != nil {
			return Future{}, err
		}
		s.rebuilt = true
	}
	st, dup, err := s.checkLocked(h, mode)
	if dup != nil || err != nil {
		if dup != nil {
			return *dup, nil
		}
		return Future{}, err
	}
	var after *appendReq // the producer's batch still being appended, if any
	if st != nil && len(st.recent) > 0 {
		if prev := st.recent[len(st.recent)-1].f; !isDone(prev) {
			after = prev.req
		}
	}
	f, err := p.publish(ctx, batch, int64(h.LastOffsetDelta)+1, after)
	if err != nil {
		if mode == nativeSeq && errors.Is(err, ErrBacklogQuotaExceeded) {
			// Refused for good, while later batches may be stored: a
			// resend of this one must be refused again, and the next one
			// follows it.
			s.recordLocked(h, st, refusedFuture(err))
		}
		return Future{}, err
	}
	s.recordLocked(h, st, f)
	return f, nil
}

// rebuildSeqsLocked reads the last seqScanBytes (at least) of the log and
// remembers the idempotent batches found, as if they had just been stored.
// Only batches stored before this load are there: every idempotent batch
// of this load goes through the state built here.
func (p *partition) rebuildSeqsLocked(ctx context.Context) error {
	p.mu.Lock()
	end := p.mu.next
	from := p.startOffsetLocked()
	bytes := p.mu.openBytes
	segs := p.mu.meta.Segments
	for i := len(segs) - 1; i >= 0 && bytes < seqScanBytes; i-- {
		from = segs[i].StartOffset
		bytes += segs[i].Bytes
	}
	p.mu.Unlock()
	found := 0
	for from < end {
		entries, err := p.read(ctx, from, 1<<20)
		if err != nil {
			return fmt.Errorf("broker: reading the log to rebuild producer sequences: %w", err)
		}
		for _, e := range entries {
			for data := e.Data; len(data) > 0; {
				batch, rest, err := record.NextBatch(data)
				if err != nil {
					return fmt.Errorf("broker: rebuilding producer sequences at offset %d: %w", e.BaseOffset, err)
				}
				data = rest
				h, _ := record.ParseHeader(batch)
				if h.ProducerID >= 0 && !h.IsControl() {
					p.seqs.recordLocked(h, p.seqs.producers[h.ProducerID], storedFuture(h.BaseOffset))
					found++
				}
			}
			from = max(from, e.LastOffset+1)
		}
	}
	if found > 0 {
		p.log.Debug("producer sequences rebuilt", "batches", found, "producers", len(p.seqs.producers))
	}
	return nil
}

// doneChan is a closed channel, the Done of every Future made by
// storedFuture.
var doneChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

func isDone(f Future) bool {
	select {
	case <-f.Done():
		return true
	default:
		return false
	}
}

// refusedFull reports whether f is done and failed for want of disk
// space (RefusedFull): nothing was stored.
func refusedFull(f Future) bool {
	if !isDone(f) {
		return false
	}
	_, err := f.Result()
	return RefusedFull(err)
}

// storedFuture is the Future of a batch found in the log at base.
func storedFuture(base int64) Future {
	return Future{&appendReq{done: doneChan, base: base}}
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

// seqBehind reports whether sequence a comes at or before b, modulo
// wrap-around (the nearer way round decides).
func seqBehind(a, b int32) bool {
	d := int64(b) - int64(a)
	return (d >= 0 && d < math.MaxInt32/2) || d < -math.MaxInt32/2
}

// checkLocked decides whether the batch may be appended. It returns the
// producer's state (nil for a producer seen for the first time), or the
// Future of the batch this one retries, or the error to answer.
func (s *producerSeqs) checkLocked(h record.BatchHeader, mode sequencing) (*producerSeq, *Future, error) {
	st := s.producers[h.ProducerID]
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
			if r.crc != h.CRC {
				return nil, nil, fmt.Errorf("%w: producer %d sequence %d was used by another batch", ErrOutOfOrderSequence, h.ProducerID, h.BaseSequence)
			}
			if !refusedFull(r.f) {
				return nil, &r.f, nil
			}
			// Refused by a full disk, so never stored: this retry is
			// appended in its place. The batches queued after it are
			// refused too, if not yet (dropOrphans): forget them.
			st.recent = st.recent[:i]
			break
		}
	}
	if n := len(st.recent); n > 0 && refusedFull(st.recent[n-1].f) {
		// The producer's last batches were refused for want of space
		// (with those queued behind them: dropOrphans), and this one is
		// no retry of theirs: it came before the producer learnt of the
		// refusal. It may not be stored before them: it is refused too,
		// and they are forgotten, so that they are stored when sent again
		// (or not at all, should the producer give up on them).
		_, ferr := st.recent[n-1].f.Result()
		for len(st.recent) > 0 && refusedFull(st.recent[len(st.recent)-1].f) {
			st.recent = st.recent[:len(st.recent)-1]
		}
		return nil, nil, fmt.Errorf("%w (producer %d's batch before sequence %d was refused; send it first)", ferr, h.ProducerID, h.BaseSequence)
	}
	if len(st.recent) == 0 {
		return st, nil, nil
	}
	prev := st.recent[len(st.recent)-1].last
	switch {
	case h.BaseSequence == nextSeq(prev):
		return st, nil, nil
	case seqBehind(h.BaseSequence, prev) && seqBehind(h.BaseSequence, st.recent[0].first) && h.BaseSequence != st.recent[0].first:
		// An old retry, older than the batches remembered: it was
		// stored, at an offset no longer known.
		return nil, nil, fmt.Errorf("%w: producer %d sequence %d, last stored %d", ErrDuplicateSequence, h.ProducerID, h.BaseSequence, prev)
	}
	return nil, nil, fmt.Errorf("%w: producer %d sequence %d, expected %d", ErrOutOfOrderSequence, h.ProducerID, h.BaseSequence, nextSeq(prev))
}

// refusedFuture is the Future of a batch refused for good with err.
func refusedFuture(err error) Future { return Future{&appendReq{done: doneChan, err: err}} }

// refuseSequenced records that a native producer's batch (h) was refused
// for good with refusal before it could be queued, so that the producer's
// next batch follows it and a resend of it is refused again. It returns
// refusal, or what refuses the batch first: the partition is not served
// here (send it to the owner), or the batch is out of sequence.
func (b *Broker) refuseSequenced(ctx context.Context, name TopicName, partition int32, h record.BatchHeader, refusal error) error {
	p, err := b.partitionFor(ctx, name, partition)
	if err != nil {
		return err
	}
	s := &p.seqs
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.rebuilt {
		if err := p.rebuildSeqsLocked(ctx); err != nil {
			return err
		}
		s.rebuilt = true
	}
	st, dup, err := s.checkLocked(h, nativeSeq)
	if err != nil {
		return err
	}
	if dup == nil { // not a resend of a batch already remembered
		s.recordLocked(h, st, refusedFuture(refusal))
	}
	return refusal
}

// recordLocked remembers a queued (or found) batch.
func (s *producerSeqs) recordLocked(h record.BatchHeader, st *producerSeq, f Future) {
	if st == nil {
		if s.producers == nil {
			s.producers = make(map[int64]*producerSeq)
		}
		st = &producerSeq{epoch: h.ProducerEpoch}
		s.producers[h.ProducerID] = st
	}
	if h.ProducerEpoch != st.epoch {
		st.epoch = h.ProducerEpoch
		st.recent = st.recent[:0]
	}
	if len(st.recent) == recentBatches {
		copy(st.recent, st.recent[1:])
		st.recent = st.recent[:recentBatches-1]
	}
	st.recent = append(st.recent, seqBatch{first: h.BaseSequence, last: lastSeq(h), crc: h.CRC, f: f})
}

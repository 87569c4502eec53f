package bookie

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/magnetar-mq/magnetar/internal/record"
)

// An entry appended through the Raft log is not copied into the state: its
// value in the state is a log reference, the Raft index of the append
// command and where in the command's data the entry lies, so each appended
// byte is written to disk once on the append path (see doc.go, "Write
// path"). A reference is exactly logRefSize bytes; an entry stored inline
// (restored from a snapshot, copied by log compaction, or written before
// references existed) is a record batch, at least record.HeaderSize bytes,
// so the two cannot be confused.
//
//	raft index u64 | offset in the command's data u32 | length u32 (big-endian)
const logRefSize = 16

// logRef locates an entry in the Raft log.
type logRef struct {
	index  uint64
	offset uint32
	length uint32
}

func (r logRef) append(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, r.index)
	dst = binary.BigEndian.AppendUint32(dst, r.offset)
	return binary.BigEndian.AppendUint32(dst, r.length)
}

// parseLogRef decodes a state value that is a log reference; ok is false
// for an inline entry.
func parseLogRef(v []byte) (r logRef, ok bool) {
	if len(v) != logRefSize {
		return logRef{}, false
	}
	return logRef{
		index:  binary.BigEndian.Uint64(v),
		offset: binary.BigEndian.Uint32(v[8:]),
		length: binary.BigEndian.Uint32(v[12:]),
	}, true
}

// logGetter reads the Raft log (raft.LogStore's GetLog).
type logGetter interface {
	GetLog(index uint64, log *raft.Log) error
}

// errLogRefGone means a log reference points at a Raft log entry that is
// not there: the log was truncated past an entry still referenced, which
// pins (pinSet) exist to prevent.
var errLogRefGone = errors.New("bookie: a referenced raft log entry is missing")

// entryResolver turns state values into entry bytes, reading referenced
// entries from the Raft log. It keeps the last log read, as consecutive
// entries usually come from one append command. The bytes of a referenced
// entry are its own (decoding a log copies it), aliased by nothing else;
// an inline entry is returned as given.
type entryResolver struct {
	log  logGetter
	last raft.Log
	have bool
}

// resolve returns the entry that the state value v stands for.
func (r *entryResolver) resolve(v []byte) ([]byte, error) {
	ref, ok := parseLogRef(v)
	if !ok {
		return v, nil
	}
	if !r.have || r.last.Index != ref.index {
		r.have = false
		if err := r.log.GetLog(ref.index, &r.last); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				return nil, fmt.Errorf("%w: index %d", errLogRefGone, ref.index)
			}
			return nil, fmt.Errorf("bookie: reading raft log entry %d: %w", ref.index, err)
		}
		r.have = true
	}
	end := uint64(ref.offset) + uint64(ref.length)
	if end > uint64(len(r.last.Data)) || ref.length < record.HeaderSize {
		return nil, fmt.Errorf("%w: reference to bytes %d-%d of raft log entry %d, which has %d", ErrCorrupt, ref.offset, end, ref.index, len(r.last.Data))
	}
	return r.last.Data[ref.offset:end:end], nil
}

// A pin is the oldest Raft log entry a segment's entries still reference:
// the log must not be truncated past it. Entries of a segment are appended
// in log order, so from the pinned entry (whose base offset is kept too)
// to the segment's end every entry is a reference.
type pin struct {
	index uint64
	base  int64 // base offset of the segment's entry at index
}

// pinKey's value is a pin: index u64 | base offset u64.
func appendPin(dst []byte, p pin) []byte {
	dst = binary.BigEndian.AppendUint64(dst, p.index)
	return binary.BigEndian.AppendUint64(dst, uint64(p.base))
}

func decodePin(v []byte) (pin, error) {
	if len(v) != 16 {
		return pin{}, fmt.Errorf("%w: log pin of %d bytes", ErrCorrupt, len(v))
	}
	return pin{index: binary.BigEndian.Uint64(v), base: int64(binary.BigEndian.Uint64(v[8:]))}, nil
}

// pinSet holds the log back for the entries the state references. Its
// floor is the lowest Raft index the log must keep; walLog.DeleteRange
// truncates no further.
//
// Pins are local to a replica (every replica references its own log; a
// snapshot stream carries entries inline) and live in the state under
// prefixPin, written in the same Pebble batch as the references. A pin
// that a deletion or a compaction removed (released) still holds the log
// until
//   - the removal is committed to the state (the fsm commits apply batches
//     on a goroutine: releaseUncommitted, committed);
//   - a flush has made it durable: the state has no WAL, so until then a
//     crash would bring the references back; and
//   - every reader of the state that started before the removal (hold) is
//     done: it may still resolve the references it saw.
type pinSet struct {
	mu       sync.Mutex
	live     map[uint64]pin // by segment
	released []releasedPin
	gen      uint64              // flush generation, bumped by startFlush
	seq      uint64              // counts releases and holds, ordering them
	holds    map[uint64]struct{} // the seq of each reader's hold
}

type releasedPin struct {
	index   uint64
	gen     uint64 // the flush generation the removal is in
	seq     uint64
	flushed bool // a flush after gen has ended
}

func newPinSet() *pinSet {
	return &pinSet{live: map[uint64]pin{}, holds: map[uint64]struct{}{}}
}

// get returns a segment's pin.
func (p *pinSet) get(segment uint64) (pin, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pn, ok := p.live[segment]
	return pn, ok
}

// set pins the log for segment at pn, releasing an older pin of the
// segment.
func (p *pinSet) set(segment uint64, pn pin) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.live[segment]; ok && old.index != pn.index {
		p.releaseLocked(old)
	}
	p.live[segment] = pn
}

// release removes a segment's pin, whose removal is committed to the
// state.
func (p *pinSet) release(segment uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.live[segment]; ok {
		p.releaseLocked(old)
		delete(p.live, segment)
	}
}

// releaseUncommitted removes a segment's pin whose removal is in an apply
// batch not yet committed to the state: readers may still see the
// references, whenever they start, until committed is called.
func (p *pinSet) releaseUncommitted(segment uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.live[segment]; ok {
		p.released = append(p.released, releasedPin{index: old.index, gen: p.gen, seq: uncommitted})
		delete(p.live, segment)
	}
}

// uncommitted is the seq of a released pin whose removal is not yet
// committed: every reader holds it.
const uncommitted = math.MaxUint64

// committed notes that the apply batch of the removals released
// uncommitted so far is committed to the state: readers starting from now
// on do not see their references.
func (p *pinSet) committed() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.released {
		if p.released[i].seq == uncommitted {
			p.seq++
			p.released[i].seq, p.released[i].gen = p.seq, p.gen
		}
	}
}

func (p *pinSet) releaseLocked(old pin) {
	p.seq++
	p.released = append(p.released, releasedPin{index: old.index, gen: p.gen, seq: p.seq})
}

// reset forgets every pin (a snapshot restore replaced the state, and its
// entries are inline). Readers' holds stay.
func (p *pinSet) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pn := range p.live {
		p.releaseLocked(pn)
	}
	clear(p.live)
	for i := range p.released {
		p.released[i].flushed = true // Restore flushed
	}
	p.dropLocked()
}

// startFlush is called before a flush of the state starts, once every
// change made so far is committed to it; flushed(token) after it ends.
func (p *pinSet) startFlush() (token uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	token = p.gen
	p.gen++
	return token
}

// flushed notes that the removals before the flush of token are durable.
func (p *pinSet) flushed(token uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.released {
		if r := &p.released[i]; r.gen <= token && r.seq != uncommitted {
			r.flushed = true
		}
	}
	p.dropLocked()
}

// hold keeps the references the state has now resolvable for a reader of
// the state (a read, a snapshot stream) until unhold.
func (p *pinSet) hold() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	p.holds[p.seq] = struct{}{}
	return p.seq
}

func (p *pinSet) unhold(id uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.holds, id)
	p.dropLocked()
}

// heldLocked reports whether a reader that started before r was released
// is still reading.
func (p *pinSet) heldLocked(r releasedPin) bool {
	for h := range p.holds {
		if h < r.seq {
			return true
		}
	}
	return false
}

// dropLocked lets go of the released pins nothing needs any more.
func (p *pinSet) dropLocked() {
	p.released = slices.DeleteFunc(p.released, func(r releasedPin) bool {
		return r.flushed && r.seq != uncommitted && !p.heldLocked(r)
	})
}

// floor is the lowest Raft index still needed (math.MaxUint64: none).
func (p *pinSet) floor() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := uint64(math.MaxUint64)
	for _, pn := range p.live {
		f = min(f, pn.index)
	}
	for _, r := range p.released {
		f = min(f, r.index)
	}
	return f
}

// pinnedBelow returns the segments pinned at an index below limit.
func (p *pinSet) pinnedBelow(limit uint64) []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []uint64
	for seg, pn := range p.live {
		if pn.index < limit {
			out = append(out, seg)
		}
	}
	return out
}

package bookie

import (
	"bytes"
	"encoding/binary"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
)

// walCodec is raft-wal's BinaryCodec, same bytes and same codec ID, encoded
// without BinaryCodec's buffer regrowth. raft-wal encodes every log into a
// fresh bytes.Buffer, and BinaryCodec's writes grow it by doubling: a 64
// KiB entry was allocated, zeroed and copied twice (once for the data, then
// again at twice the size for the 16-byte trailer). walCodec encodes a log
// of a StoreLogs made through walLog into its encodeArena, reused from one
// call to the next, and any other log into a buffer grown once to its exact
// size: each log is copied once, and mostly into memory that needs neither
// allocating nor zeroing. Decoding is BinaryCodec's.
//
// The ID: raft-wal (v0.4.0) writes CodecBinaryV1 into every new segment's
// header and metadata whatever codec it was given, and refuses at Open a
// segment whose codec is not the codec's ID, so a codec with an ID of its
// own could never reopen its own log. walCodec therefore reports
// CodecBinaryV1, what its segments hold and what older versions wrote and
// read, except on the first call: raft-wal's Open checks once, before
// anything else, that a codec passed to it has an ID outside the range it
// reserves for its own codecs, and walCodec passes that check with
// FirstExternalCodecID. A walCodec serves one Open (newWALCodec); the log
// on disk is exactly BinaryCodec's, so logs move freely between versions.
type walCodec struct {
	raftwal.BinaryCodec
	// checked is set once raft-wal's Open has checked the ID.
	checked *atomic.Bool
	arena   *encodeArena
}

var _ raftwal.Codec = walCodec{}

// newWALCodec returns the codec for one raftwal.Open, encoding the logs of
// walLog's StoreLogs calls into arena.
func newWALCodec(arena *encodeArena) walCodec {
	return walCodec{checked: new(atomic.Bool), arena: arena}
}

// ID implements raftwal.Codec (see walCodec).
func (c walCodec) ID() uint64 {
	if c.checked.CompareAndSwap(false, true) {
		return raftwal.FirstExternalCodecID
	}
	return raftwal.CodecBinaryV1
}

// Encode implements raftwal.Codec: BinaryCodec's encoding, into a buffer
// grown once to hold it.
func (c walCodec) Encode(l *raft.Log, w io.Writer) error {
	if b, ok := w.(*bytes.Buffer); ok {
		if buf := c.arena.lend(l, b.Len()); buf != nil {
			*b = *bytes.NewBuffer(buf)
		} else {
			b.Grow(encodedLogSize(l))
		}
	}
	return c.BinaryCodec.Encode(l, w)
}

// Decode implements raftwal.Codec.
func (c walCodec) Decode(b []byte, l *raft.Log) error { return c.BinaryCodec.Decode(b, l) }

// encodedLogSize is an upper bound of l's size in BinaryCodec's format:
// varints of the index, term, type and the two lengths, the data, the
// extensions and the append time (time.Time.MarshalBinary: at most 16
// bytes).
func encodedLogSize(l *raft.Log) int {
	return uvarintLen(l.Index) + uvarintLen(l.Term) + uvarintLen(uint64(l.Type)) +
		uvarintLen(uint64(len(l.Data))) + len(l.Data) +
		uvarintLen(uint64(len(l.Extensions))) + len(l.Extensions) + 16
}

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}

// maxEncodeArena bounds the memory an encodeArena keeps between calls; the
// logs of a larger batch past it get buffers of their own.
const maxEncodeArena = 4 << 20

// encodeArena is the memory walCodec encodes the logs of one StoreLogs call
// into, reused by the next call. It relies on raft-wal's StoreLogs copying
// each encoded log into its segment writer's buffer and keeping no
// reference to it once it returns (raft-wal v0.4.0: Writer.Append copies
// every entry into its commit buffer; the per-log bytes.Buffer exists only
// because the logs are all encoded before that copy).
//
// Only the logs of the call walLog armed the arena for are encoded into
// it, recognised by pointer, in order: a StoreLogs made on the WAL
// directly, or by raft-wal itself (StoreLog), gets ordinary buffers. As
// raft-wal encodes under its write lock, a call's logs are written into the
// arena only after the previous call has returned, so re-arming the arena
// for the next call never overwrites logs still in use.
type encodeArena struct {
	mu   sync.Mutex
	buf  []byte
	logs []*raft.Log // of the armed call; nil when not armed
	next int         // index in logs of the next log to encode
	used int         // bytes of buf lent in this call
}

// arm makes the arena lend to the encoding of logs, the batch about to be
// stored; disarm(logs) ends that.
func (a *encodeArena) arm(logs []*raft.Log) {
	need := 0
	for _, l := range logs {
		need += encodedLogSize(l)
	}
	need = min(need, maxEncodeArena)
	a.mu.Lock()
	defer a.mu.Unlock()
	if cap(a.buf) < need {
		a.buf = make([]byte, need)
	}
	a.logs, a.next, a.used = logs, 0, 0
}

// disarm stops lending for the call logs were armed for, unless another
// call has armed the arena since.
func (a *encodeArena) disarm(logs []*raft.Log) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.logs) > 0 && len(logs) > 0 && &a.logs[0] == &logs[0] {
		a.logs = nil
	}
}

// lend returns an empty slice with room for l's encoding if l is the next
// log of the armed call, its buffer is empty (has) and the arena has the
// room, else nil.
func (a *encodeArena) lend(l *raft.Log, has int) []byte {
	if a == nil || has != 0 {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next >= len(a.logs) || a.logs[a.next] != l {
		return nil
	}
	a.next++
	n := encodedLogSize(l)
	if a.used+n > len(a.buf) {
		return nil
	}
	b := a.buf[a.used : a.used : a.used+n]
	a.used += n
	return b
}

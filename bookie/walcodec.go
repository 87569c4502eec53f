package bookie

import (
	"bytes"
	"encoding/binary"
	"io"
	"sync/atomic"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
)

// walCodec is raft-wal's BinaryCodec, same bytes and same codec ID, encoded
// without BinaryCodec's buffer regrowth. raft-wal encodes every log into a
// fresh bytes.Buffer, and BinaryCodec's writes grow it by doubling: a 64
// KiB entry was allocated, zeroed and copied twice (once for the data, then
// again at twice the size for the 16-byte trailer). walCodec grows the
// buffer to the exact size first, so each log is copied once, into one
// allocation. Decoding is BinaryCodec's.
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
}

var _ raftwal.Codec = walCodec{}

// newWALCodec returns the codec for one raftwal.Open.
func newWALCodec() walCodec { return walCodec{checked: new(atomic.Bool)} }

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
		b.Grow(encodedLogSize(l))
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

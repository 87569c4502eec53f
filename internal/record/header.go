package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Sentinel errors. Errors returned by this package wrap one of them.
var (
	// ErrTruncated means the input ends before the batch does.
	ErrTruncated = errors.New("record: truncated batch")
	// ErrMagic means the batch is not magic 2 (message format v2).
	ErrMagic = errors.New("record: unsupported magic")
	// ErrCRC means the batch's CRC-32C does not match its contents.
	ErrCRC = errors.New("record: CRC mismatch")
	// ErrCorrupt means the batch's fields or records are malformed.
	ErrCorrupt = errors.New("record: corrupt batch")
	// ErrCodec means the batch names a compression codec this package does
	// not know.
	ErrCodec = errors.New("record: unknown compression codec")
	// ErrTooLarge means a batch would exceed the format's or this package's
	// size limits (see MaxUncompressedSize).
	ErrTooLarge = errors.New("record: batch too large")
	// ErrNoRecords means AppendBatch was given no records.
	ErrNoRecords = errors.New("record: batch has no records")
)

// Fixed sizes and offsets of the batch header.
const (
	// HeaderSize is the size of the fixed batch header, up to and including
	// the records count.
	HeaderSize = 61
	// Magic is the only magic value (message format version) supported.
	Magic = 2

	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offNumRecords      = 57

	// lengthOverhead is the bytes before and including batchLength.
	lengthOverhead = 12
	// minLength is the smallest valid batchLength.
	minLength = HeaderSize - lengthOverhead
)

// Attribute bits.
const (
	attrCodecMask     = 0x07
	attrTimestampType = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

// Values Kafka writes when a field does not apply.
const (
	// NoProducerID is the producerId of a non-idempotent batch.
	NoProducerID = -1
	// NoProducerEpoch is the producerEpoch of a non-idempotent batch.
	NoProducerEpoch = -1
	// NoSequence is the baseSequence of a non-idempotent batch.
	NoSequence = -1
	// NoPartitionLeaderEpoch is the partitionLeaderEpoch producers write.
	NoPartitionLeaderEpoch = -1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// TimestampType says what a batch's timestamps mean.
type TimestampType int8

const (
	// CreateTime timestamps were set by the producer.
	CreateTime TimestampType = 0
	// LogAppendTime timestamps were set by the broker; every record's
	// timestamp is the batch's MaxTimestamp.
	LogAppendTime TimestampType = 1
)

func (t TimestampType) String() string {
	if t == LogAppendTime {
		return "LogAppendTime"
	}
	return "CreateTime"
}

// BatchHeader holds the fixed fields of a batch.
type BatchHeader struct {
	BaseOffset int64
	// Length is batchLength: the size of the batch after this field.
	Length               int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Size is the batch's total size in bytes.
func (h BatchHeader) Size() int { return lengthOverhead + int(h.Length) }

// LastOffset is the offset of the batch's last record.
func (h BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset is the offset right after the batch.
func (h BatchHeader) NextOffset() int64 { return h.LastOffset() + 1 }

// Codec is the batch's compression codec.
func (h BatchHeader) Codec() Codec { return Codec(h.Attributes & attrCodecMask) }

// TimestampType says whether timestamps are create or log-append times.
func (h BatchHeader) TimestampType() TimestampType {
	if h.Attributes&attrTimestampType != 0 {
		return LogAppendTime
	}
	return CreateTime
}

// IsTransactional reports whether the batch is part of a transaction.
func (h BatchHeader) IsTransactional() bool { return h.Attributes&attrTransactional != 0 }

// IsControl reports whether the batch holds control records (transaction
// markers) rather than user data.
func (h BatchHeader) IsControl() bool { return h.Attributes&attrControl != 0 }

// ParseHeader parses and validates the header of the batch at the start of
// b: b must hold at least the whole batch (it may hold more after it), the
// magic must be 2, and the length, record count and last offset delta must
// be plausible. It does not check the CRC (see VerifyCRC).
func ParseHeader(b []byte) (BatchHeader, error) {
	if len(b) < HeaderSize {
		return BatchHeader{}, fmt.Errorf("%w: %d bytes, header needs %d", ErrTruncated, len(b), HeaderSize)
	}
	h := BatchHeader{
		BaseOffset:           int64(binary.BigEndian.Uint64(b[offBaseOffset:])),
		Length:               int32(binary.BigEndian.Uint32(b[offLength:])),
		PartitionLeaderEpoch: int32(binary.BigEndian.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  binary.BigEndian.Uint32(b[offCRC:]),
		Attributes:           int16(binary.BigEndian.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:        int64(binary.BigEndian.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:         int64(binary.BigEndian.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(binary.BigEndian.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(binary.BigEndian.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(binary.BigEndian.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(binary.BigEndian.Uint32(b[offNumRecords:])),
	}
	if h.Magic != Magic {
		return h, fmt.Errorf("%w: %d", ErrMagic, h.Magic)
	}
	if h.Length < minLength {
		return h, fmt.Errorf("%w: batch length %d below minimum %d", ErrCorrupt, h.Length, minLength)
	}
	if len(b) < h.Size() {
		return h, fmt.Errorf("%w: %d bytes, batch needs %d", ErrTruncated, len(b), h.Size())
	}
	if h.NumRecords < 0 {
		return h, fmt.Errorf("%w: negative record count %d", ErrCorrupt, h.NumRecords)
	}
	if h.LastOffsetDelta < 0 {
		return h, fmt.Errorf("%w: negative last offset delta %d", ErrCorrupt, h.LastOffsetDelta)
	}
	if h.LastOffset() < h.BaseOffset {
		return h, fmt.Errorf("%w: last offset of %d+%d overflows", ErrCorrupt, h.BaseOffset, h.LastOffsetDelta)
	}
	return h, nil
}

// VerifyCRC checks the CRC-32C of the batch at the start of b (which may
// hold more bytes after it). It also validates the header as ParseHeader
// does and returns it.
func VerifyCRC(b []byte) (BatchHeader, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if got := crc32.Checksum(b[offAttributes:h.Size()], castagnoli); got != h.CRC {
		return h, fmt.Errorf("%w: stored %#08x, computed %#08x", ErrCRC, h.CRC, got)
	}
	return h, nil
}

// SetBaseOffset rewrites the base offset of the batch at the start of b.
// The base offset is outside the CRC, so the checksum stays valid. b must
// hold at least the batch header.
func SetBaseOffset(b []byte, off int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:offBaseOffset+8], uint64(off))
}

// SetPartitionLeaderEpoch rewrites the partition leader epoch of the batch
// at the start of b; like the base offset it is outside the CRC.
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:offLeaderEpoch+4], uint32(epoch))
}

// NextBatch splits the first batch off b, as found in a Kafka produce
// request's record set or a stored run of batches. It validates the header
// (not the CRC). On error, batch and rest are nil.
func NextBatch(b []byte) (batch, rest []byte, err error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, nil, err
	}
	n := h.Size()
	return b[:n:n], b[n:], nil
}

// SplitBatches splits b, a concatenation of whole batches, appending each
// batch (aliasing b) to dst. A trailing partial batch is an error
// (ErrTruncated), as it is in a produce request.
func SplitBatches(dst [][]byte, b []byte) ([][]byte, error) {
	for len(b) > 0 {
		batch, rest, err := NextBatch(b)
		if err != nil {
			return dst, err
		}
		dst = append(dst, batch)
		b = rest
	}
	return dst, nil
}

package record

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
	"sync"
)

// Record is one record of a batch.
type Record struct {
	// Offset is the record's absolute offset. Decoding fills it in;
	// encoding ignores it: records get consecutive offsets from the batch's
	// base offset.
	Offset int64
	// Timestamp is in milliseconds since the Unix epoch.
	Timestamp int64
	// Key and Value are nil for a null key or value (distinct from empty).
	Key, Value []byte
	Headers    []Header
}

// Header is one record header. A nil Value is a null value.
type Header struct {
	Key   string
	Value []byte
}

// Producer identifies an idempotent or transactional producer's batch.
type Producer struct {
	ID           int64
	Epoch        int16
	BaseSequence int32
}

// BatchOptions are the batch-level fields AppendBatch writes.
type BatchOptions struct {
	// BaseOffset is the offset of the first record. Producers write 0 and
	// the partition owner sets it (SetBaseOffset).
	BaseOffset int64
	// PartitionLeaderEpoch is written as is. Kafka producers write
	// NoPartitionLeaderEpoch (-1).
	PartitionLeaderEpoch int32
	Codec                Codec
	TimestampType        TimestampType
	Transactional        bool
	Control              bool
	// Producer is nil for a batch from a non-idempotent producer, which is
	// written with NoProducerID, NoProducerEpoch and NoSequence.
	Producer *Producer
}

// uncompressedBufs holds scratch buffers for the records section of
// compressed batches.
var uncompressedBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledBuf keeps pathological batches from pinning memory in the pool.
const maxPooledBuf = 4 << 20

// AppendBatch encodes records as one batch appended to dst and returns the
// extended slice. The batch's base timestamp is the first record's, its max
// timestamp the largest. On error dst is returned unchanged in length.
func AppendBatch(dst []byte, opts BatchOptions, records []Record) ([]byte, error) {
	if len(records) == 0 {
		return dst, ErrNoRecords
	}
	if !opts.Codec.Valid() {
		return dst, fmt.Errorf("%w: %d", ErrCodec, opts.Codec)
	}
	if len(records) > math.MaxInt32 {
		return dst, fmt.Errorf("%w: %d records", ErrTooLarge, len(records))
	}
	start := len(dst)
	baseTS := records[0].Timestamp
	maxTS := baseTS
	for i := range records {
		maxTS = max(maxTS, records[i].Timestamp)
	}

	dst = growLen(dst, HeaderSize)
	h := dst[start:]
	binary.BigEndian.PutUint64(h[offBaseOffset:], uint64(opts.BaseOffset))
	binary.BigEndian.PutUint32(h[offLeaderEpoch:], uint32(opts.PartitionLeaderEpoch))
	h[offMagic] = Magic
	attrs := int16(opts.Codec)
	if opts.TimestampType == LogAppendTime {
		attrs |= attrTimestampType
	}
	if opts.Transactional {
		attrs |= attrTransactional
	}
	if opts.Control {
		attrs |= attrControl
	}
	binary.BigEndian.PutUint16(h[offAttributes:], uint16(attrs))
	binary.BigEndian.PutUint32(h[offLastOffsetDelta:], uint32(len(records)-1))
	binary.BigEndian.PutUint64(h[offBaseTimestamp:], uint64(baseTS))
	binary.BigEndian.PutUint64(h[offMaxTimestamp:], uint64(maxTS))
	p := Producer{ID: NoProducerID, Epoch: NoProducerEpoch, BaseSequence: NoSequence}
	if opts.Producer != nil {
		p = *opts.Producer
	}
	binary.BigEndian.PutUint64(h[offProducerID:], uint64(p.ID))
	binary.BigEndian.PutUint16(h[offProducerEpoch:], uint16(p.Epoch))
	binary.BigEndian.PutUint32(h[offBaseSequence:], uint32(p.BaseSequence))
	binary.BigEndian.PutUint32(h[offNumRecords:], uint32(len(records)))

	if opts.Codec == CodecNone {
		for i := range records {
			dst = appendRecord(dst, &records[i], int64(i), baseTS)
		}
	} else {
		bp := uncompressedBufs.Get().(*[]byte)
		buf := (*bp)[:0]
		for i := range records {
			buf = appendRecord(buf, &records[i], int64(i), baseTS)
		}
		var err error
		dst, err = compress(dst, opts.Codec, buf)
		if cap(buf) <= maxPooledBuf {
			*bp = buf[:0]
			uncompressedBufs.Put(bp)
		}
		if err != nil {
			return dst[:start], fmt.Errorf("record: compressing with %s: %w", opts.Codec, err)
		}
	}

	length := len(dst) - start - lengthOverhead
	if length > math.MaxInt32 {
		return dst[:start], fmt.Errorf("%w: %d bytes", ErrTooLarge, length+lengthOverhead)
	}
	binary.BigEndian.PutUint32(dst[start+offLength:], uint32(length))
	crc := crc32.Checksum(dst[start+offAttributes:], castagnoli)
	binary.BigEndian.PutUint32(dst[start+offCRC:], crc)
	return dst, nil
}

// appendRecord appends one record with the given offset delta.
func appendRecord(dst []byte, r *Record, offsetDelta, baseTS int64) []byte {
	tsDelta := r.Timestamp - baseTS
	body := 1 + varintLen(tsDelta) + varintLen(offsetDelta) +
		bytesLen(r.Key) + bytesLen(r.Value) + varintLen(int64(len(r.Headers)))
	for i := range r.Headers {
		body += varintLen(int64(len(r.Headers[i].Key))) + len(r.Headers[i].Key) + bytesLen(r.Headers[i].Value)
	}
	dst = binary.AppendVarint(dst, int64(body))
	dst = append(dst, 0) // attributes: unused
	dst = binary.AppendVarint(dst, tsDelta)
	dst = binary.AppendVarint(dst, offsetDelta)
	dst = appendBytes(dst, r.Key)
	dst = appendBytes(dst, r.Value)
	dst = binary.AppendVarint(dst, int64(len(r.Headers)))
	for i := range r.Headers {
		dst = binary.AppendVarint(dst, int64(len(r.Headers[i].Key)))
		dst = append(dst, r.Headers[i].Key...)
		dst = appendBytes(dst, r.Headers[i].Value)
	}
	return dst
}

// appendBytes appends a varint length (-1 for nil) and b.
func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// bytesLen is the encoded size of b as appendBytes writes it.
func bytesLen(b []byte) int {
	if b == nil {
		return 1
	}
	return varintLen(int64(len(b))) + len(b)
}

// varintLen is the size of x as a zig-zag varint.
func varintLen(x int64) int {
	u := uint64(x<<1) ^ uint64(x>>63)
	return (bits.Len64(u|1) + 6) / 7
}

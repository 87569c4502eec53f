// Package recordtest builds record batches for tests, among them hostile
// ones that package record's encoder never writes: batches whose records
// are already compressed, gzip bombs, records too large to hold in memory
// comfortably.
package recordtest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/magnetar-mq/magnetar/internal/record"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Batch wraps a records section, compressed with codec already (or not,
// for record.CodecNone), in a batch header with a good CRC: numRecords
// records at offset deltas 0 .. numRecords-1, no producer, timestamps now.
func Batch(codec record.Codec, numRecords int32, records []byte) []byte {
	now := time.Now().UnixMilli()
	b := make([]byte, 0, record.HeaderSize+len(records))
	b = binary.BigEndian.AppendUint64(b, 0)                                         // base offset
	b = binary.BigEndian.AppendUint32(b, uint32(record.HeaderSize-12+len(records))) // batch length
	b = binary.BigEndian.AppendUint32(b, 0)                                         // partition leader epoch
	b = append(b, record.Magic)
	crcAt := len(b)
	b = binary.BigEndian.AppendUint32(b, 0) // CRC, set below
	b = binary.BigEndian.AppendUint16(b, uint16(codec))
	b = binary.BigEndian.AppendUint32(b, uint32(numRecords-1)) // last offset delta
	b = binary.BigEndian.AppendUint64(b, uint64(now))          // base timestamp
	b = binary.BigEndian.AppendUint64(b, uint64(now))          // max timestamp
	b = binary.BigEndian.AppendUint64(b, ^uint64(0))           // producer ID -1
	b = binary.BigEndian.AppendUint16(b, ^uint16(0))           // producer epoch -1
	b = binary.BigEndian.AppendUint32(b, ^uint32(0))           // base sequence -1
	b = binary.BigEndian.AppendUint32(b, uint32(numRecords))
	b = append(b, records...)
	binary.BigEndian.PutUint32(b[crcAt:], crc32.Checksum(b[crcAt+4:], castagnoli))
	return b
}

// GzipBomb returns a gzip stream that decompresses to n zero bytes (n a
// multiple of 64 MiB, or less than that): one member of up to 64 MiB of
// zeros, repeated, which gzip readers read as one stream. A gibibyte costs
// about a mebibyte, and building it compresses 64 MiB once.
func GzipBomb(t testing.TB, n int) []byte {
	t.Helper()
	const member = 64 << 20
	one := gzipZeros(t, min(n, member), [2][]byte{})
	return bytes.Repeat(one, max(n/member, 1))
}

// GzipRecord returns the records section of a gzip batch of one record
// whose value is valueBytes zero bytes: a valid batch once wrapped by
// Batch(record.CodecGzip, 1, ...), built without holding the value.
func GzipRecord(t testing.TB, valueBytes int) []byte {
	t.Helper()
	body := []byte{0}                                   // attributes
	body = binary.AppendVarint(body, 0)                 // timestamp delta
	body = binary.AppendVarint(body, 0)                 // offset delta
	body = binary.AppendVarint(body, -1)                // null key
	body = binary.AppendVarint(body, int64(valueBytes)) // value length
	head := binary.AppendVarint(nil, int64(len(body)+valueBytes+1))
	head = append(head, body...)
	tail := binary.AppendVarint(nil, 0) // no headers
	return gzipZeros(t, valueBytes, [2][]byte{head, tail})
}

// gzipZeros gzips around[0], n zero bytes, around[1].
func gzipZeros(t testing.TB, n int, around [2][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	write := func(p []byte) {
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	write(around[0])
	chunk := make([]byte, 1<<20)
	for left := n; left > 0; left -= len(chunk) {
		write(chunk[:min(left, len(chunk))])
	}
	write(around[1])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

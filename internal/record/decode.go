package record

import (
	"encoding/binary"
	"fmt"
	"math"
)

// minRecordSize is the smallest possible encoded record: length,
// attributes, timestamp delta, offset delta, key, value and header count of
// one byte each.
const minRecordSize = 7

// Reader iterates over the records of one batch:
//
//	var r record.Reader
//	if err := r.Reset(batch); err != nil { ... }
//	for r.Next() {
//		rec := r.Record()
//		...
//	}
//	if err := r.Err(); err != nil { ... }
//
// A Reader may be reused for many batches; it keeps its decompression
// buffer, so a warm Reader decodes without allocating except for header
// keys. The Record it returns aliases the batch bytes (uncompressed
// batches) or the Reader's buffer (compressed ones) and its Headers slice is
// reused: everything is valid only until the next call to Next or Reset.
// Copy what you keep.
type Reader struct {
	h       BatchHeader
	data    []byte // uncompressed records section
	off     int    // cursor into data
	left    int32  // records not yet returned
	buf     []byte // decompression buffer, reused across batches
	headers []Header
	rec     Record
	err     error
}

// Reset starts reading the batch at the start of b: it validates the
// header, verifies the CRC and decompresses the records (at most
// MaxUncompressedSize bytes of them).
func (r *Reader) Reset(b []byte) error { return r.reset(b, MaxUncompressedSize, false) }

// reset is Reset with a limit on the records section once decompressed;
// with plainToo the limit applies to uncompressed batches as well.
func (r *Reader) reset(b []byte, limit int, plainToo bool) error {
	*r = Reader{buf: r.buf[:0], headers: r.headers[:0]}
	h, err := VerifyCRC(b)
	if err != nil {
		r.err = err
		return err
	}
	r.h = h
	body := b[HeaderSize:h.Size()]
	switch c := h.Codec(); c {
	case CodecNone:
		if plainToo && len(body) > limit {
			r.err = fmt.Errorf("%w: %d bytes of records, over %d", ErrTooLarge, len(body), limit)
			return r.err
		}
		r.data = body
	default:
		r.buf, err = decompressLimit(r.buf, c, body, limit)
		if err != nil {
			r.err = err
			return err
		}
		r.data = r.buf
	}
	if int64(h.NumRecords)*minRecordSize > int64(len(r.data)) {
		r.err = fmt.Errorf("%w: %d records cannot fit in %d bytes", ErrCorrupt, h.NumRecords, len(r.data))
		return r.err
	}
	r.left = h.NumRecords
	return nil
}

// Header returns the header of the batch being read.
func (r *Reader) Header() BatchHeader { return r.h }

// Err returns the first error met, if any.
func (r *Reader) Err() error { return r.err }

// Record returns the record Next moved to.
func (r *Reader) Record() Record { return r.rec }

// Next moves to the next record and reports whether there is one. At the
// end of the batch it checks that no bytes are left over.
func (r *Reader) Next() bool {
	if r.err != nil {
		return false
	}
	if r.left == 0 {
		if r.off != len(r.data) {
			r.err = fmt.Errorf("%w: %d bytes after the last record", ErrCorrupt, len(r.data)-r.off)
		}
		r.data = nil
		return false
	}
	r.left--
	c := cursor{b: r.data, off: r.off}
	length := c.varint32()
	if c.err == nil && (length < 0 || int(length) > len(c.b)-c.off) {
		c.fail("record length out of range")
	}
	if c.err != nil {
		r.err = c.err
		return false
	}
	end := c.off + int(length)
	c.b = c.b[:end] // the record's fields must stay inside its length
	c.byte()        // attributes: unused
	tsDelta := c.varlong()
	offDelta := c.varint32()
	key := c.bytes()
	value := c.bytes()
	n := c.varint32()
	if c.err == nil && (n < 0 || int64(n)*2 > int64(end-c.off)) {
		c.fail("header count out of range")
	}
	r.headers = r.headers[:0]
	for i := int32(0); i < n && c.err == nil; i++ {
		hk := c.bytes()
		if hk == nil && c.err == nil {
			c.fail("null header key")
		}
		r.headers = append(r.headers, Header{Key: string(hk), Value: c.bytes()})
	}
	if c.err == nil && c.off != end {
		c.fail("record length does not match its fields")
	}
	if c.err != nil {
		r.err = c.err
		return false
	}
	r.off = end
	ts := r.h.BaseTimestamp + tsDelta
	if r.h.TimestampType() == LogAppendTime {
		ts = r.h.MaxTimestamp
	}
	r.rec = Record{
		Offset:    r.h.BaseOffset + int64(offDelta),
		Timestamp: ts,
		Key:       key,
		Value:     value,
	}
	if len(r.headers) > 0 {
		r.rec.Headers = r.headers
	}
	return true
}

// DecodeRecords calls fn for each record of the batch at the start of b,
// after validating its header and CRC, and stops at the first error (fn's
// errors are returned as is). Unlike a Reader, the records passed to fn may
// be kept: their bytes alias b (uncompressed batch) or a buffer allocated
// for this call, and their Headers slices are not reused.
func DecodeRecords(b []byte, fn func(Record) error) error {
	var r Reader
	if err := r.Reset(b); err != nil {
		return err
	}
	for r.Next() {
		rec := r.Record()
		if rec.Headers != nil {
			rec.Headers = append([]Header(nil), rec.Headers...)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return r.Err()
}

// Validate checks everything a partition owner must check on a batch a
// producer sent before storing it: the header, the CRC, that every record
// decodes, that the record count matches lastOffsetDelta and that offset
// deltas run 0, 1, 2, ... It returns the header. The records of a
// compressed batch may take up to MaxUncompressedSize bytes once
// decompressed; ValidateLimit sets a lower limit.
func Validate(b []byte) (BatchHeader, error) {
	return validate(b, MaxUncompressedSize, false)
}

// ValidateLimit is Validate for a batch that may take at most maxBytes
// once decompressed (its header and its decompressed records): the limit
// a broker sets on produced batches applies to what they hold, not only to
// what they weigh on the wire. Decompression stops at the limit (the error
// wraps ErrTooLarge), so a small batch that would decompress to gigabytes
// costs at most about maxBytes of memory.
func ValidateLimit(b []byte, maxBytes int) (BatchHeader, error) {
	return validate(b, maxBytes-HeaderSize, true)
}

func validate(b []byte, limit int, plainToo bool) (BatchHeader, error) {
	var r Reader
	if err := r.reset(b, limit, plainToo); err != nil {
		return r.h, err
	}
	h := r.h
	if int64(h.NumRecords) != int64(h.LastOffsetDelta)+1 {
		return h, fmt.Errorf("%w: %d records but last offset delta %d", ErrCorrupt, h.NumRecords, h.LastOffsetDelta)
	}
	want := h.BaseOffset
	for r.Next() {
		if got := r.rec.Offset; got != want {
			return h, fmt.Errorf("%w: record offset delta %d, want %d", ErrCorrupt, got-h.BaseOffset, want-h.BaseOffset)
		}
		want++
	}
	return h, r.Err()
}

// cursor reads the fields of a record; it records the first error and
// returns zero values after it.
type cursor struct {
	b   []byte
	off int
	err error
}

func (c *cursor) fail(what string) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: %s at byte %d", ErrCorrupt, what, c.off)
	}
}

func (c *cursor) byte() byte {
	if c.err != nil {
		return 0
	}
	if c.off >= len(c.b) {
		c.fail("truncated record")
		return 0
	}
	v := c.b[c.off]
	c.off++
	return v
}

func (c *cursor) varlong() int64 {
	if c.err != nil {
		return 0
	}
	v, n := binary.Varint(c.b[c.off:])
	if n <= 0 {
		c.fail("bad varint")
		return 0
	}
	c.off += n
	return v
}

func (c *cursor) varint32() int32 {
	v := c.varlong()
	if v < math.MinInt32 || v > math.MaxInt32 {
		c.fail("varint overflows int32")
		return 0
	}
	return int32(v)
}

// bytes reads a varint length and that many bytes; -1 gives nil. The
// result aliases the input; its capacity is clipped so appends copy.
func (c *cursor) bytes() []byte {
	n := c.varint32()
	if c.err != nil || n == -1 {
		return nil
	}
	if n < 0 || int(n) > len(c.b)-c.off {
		c.fail("byte field length out of range")
		return nil
	}
	v := c.b[c.off : c.off+int(n) : c.off+int(n)]
	c.off += int(n)
	return v
}

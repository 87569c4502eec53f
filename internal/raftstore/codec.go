package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// recordVersion is the first byte of every encoded log record.
const recordVersion = 1

// ErrCorrupt means a stored log record or stable value could not be decoded.
var ErrCorrupt = errors.New("raftstore: corrupt record")

// appendLog appends the encoding of l (without its index, which lives in the
// key) to dst and returns the extended slice.
func appendLog(dst []byte, l *raft.Log) []byte {
	dst = append(dst, recordVersion, byte(l.Type))
	dst = binary.AppendUvarint(dst, l.Term)
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	dst = binary.AppendVarint(dst, at)
	dst = binary.AppendUvarint(dst, uint64(len(l.Data)))
	dst = append(dst, l.Data...)
	dst = binary.AppendUvarint(dst, uint64(len(l.Extensions)))
	dst = append(dst, l.Extensions...)
	return dst
}

// decodeLog decodes a record written by appendLog into l, setting l.Index to
// index. Data and Extensions are copied: l does not alias b. Any malformed
// input (truncated, trailing bytes, unknown version, oversized lengths) gives
// an error wrapping ErrCorrupt, never a panic.
func decodeLog(index uint64, b []byte, l *raft.Log) error {
	r := reader{b: b}
	if v := r.byte(); r.err == nil && v != recordVersion {
		return fmt.Errorf("%w: unknown record version %d", ErrCorrupt, v)
	}
	typ := raft.LogType(r.byte())
	term := r.uvarint()
	at := r.varint()
	data := r.lenBytes()
	ext := r.lenBytes()
	if r.err == nil && len(r.b) != 0 {
		r.err = ErrCorrupt
	}
	if r.err != nil {
		return r.err
	}
	*l = raft.Log{
		Index:      index,
		Term:       term,
		Type:       typ,
		Data:       cloneBytes(data),
		Extensions: cloneBytes(ext),
	}
	if at != 0 {
		l.AppendedAt = time.Unix(0, at)
	}
	return nil
}

func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// reader is a decoding cursor: the first error sticks and every later read
// returns a zero value, so callers check r.err once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = ErrCorrupt
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) < 1 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// lenBytes reads a uvarint length and that many bytes; the result aliases
// the input.
func (r *reader) lenBytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

package metadata

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrCorrupt means bytes read from disk or from the Raft log (a stored
// record, a history entry, a command, a snapshot) could not be decoded.
var ErrCorrupt = errors.New("metadata: corrupt data")

// ErrInvalidKey is returned by Put and Delete for an empty key.
var ErrInvalidKey = errors.New("metadata: invalid key")

// recordFormat is the first byte of every stored value record and history
// entry, so the layout can change later without guessing.
const recordFormat = 1

// reader is a decoding cursor: the first error sticks and every later read
// returns a zero value, so callers check err once, at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrCorrupt, what)
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.fail("truncated")
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
		r.fail("bad uvarint")
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
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// bytes reads a uvarint length and that many bytes, aliasing the input.
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("length past the end")
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

// done returns the first error, or an error if input is left over.
func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	return r.err
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// cloneValue copies b; an empty value decodes as an empty non-nil slice so
// that "present with no bytes" looks the same everywhere.
func cloneValue(b []byte) []byte { return append([]byte{}, b...) }

// appendKVRecord encodes the stored form of a key's value (the key itself is
// the Pebble key):
//
//	format | version varint | createRevision varint | modRevision varint | len(value) uvarint | value
func appendKVRecord(dst []byte, kv *KV) []byte {
	dst = append(dst, recordFormat)
	dst = binary.AppendVarint(dst, kv.Version)
	dst = binary.AppendVarint(dst, kv.CreateRevision)
	dst = binary.AppendVarint(dst, kv.ModRevision)
	return appendBytes(dst, kv.Value)
}

// decodeKVRecord decodes a record written by appendKVRecord; the value is
// copied.
func decodeKVRecord(key string, b []byte) (KV, error) {
	r := reader{b: b}
	if f := r.byte(); r.err == nil && f != recordFormat {
		return KV{}, fmt.Errorf("%w: unknown record format %d", ErrCorrupt, f)
	}
	kv := KV{Key: key, Version: r.varint(), CreateRevision: r.varint(), ModRevision: r.varint()}
	v := r.bytes()
	if err := r.done(); err != nil {
		return KV{}, err
	}
	kv.Value = cloneValue(v)
	return kv, nil
}

// appendEvents encodes the events of one revision as a history entry (the
// revision is the Pebble key and every event's ModRevision):
//
//	format | count uvarint | count × (type byte | key | value | version varint | createRevision varint)
func appendEvents(dst []byte, evs []Event) []byte {
	dst = append(dst, recordFormat)
	dst = binary.AppendUvarint(dst, uint64(len(evs)))
	for i := range evs {
		e := &evs[i]
		dst = append(dst, byte(e.Type))
		dst = appendString(dst, e.KV.Key)
		dst = appendBytes(dst, e.KV.Value)
		dst = binary.AppendVarint(dst, e.KV.Version)
		dst = binary.AppendVarint(dst, e.KV.CreateRevision)
	}
	return dst
}

// minEventSize is the fewest bytes one encoded event takes; it bounds the
// count read from a history entry before anything is allocated.
const minEventSize = 5

// decodeEvents decodes a history entry written by appendEvents for revision
// rev, appending the events to dst. Keys and values are copied.
func decodeEvents(dst []Event, rev int64, b []byte) ([]Event, error) {
	r := reader{b: b}
	if f := r.byte(); r.err == nil && f != recordFormat {
		return dst, fmt.Errorf("%w: unknown history format %d", ErrCorrupt, f)
	}
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)/minEventSize) {
		r.fail("event count past the end")
	}
	start := len(dst)
	for i := uint64(0); i < n && r.err == nil; i++ {
		typ := EventType(r.byte())
		key := r.bytes()
		val := r.bytes()
		e := Event{Type: typ, KV: KV{Key: string(key), Version: r.varint(), CreateRevision: r.varint(), ModRevision: rev}}
		switch typ {
		case EventPut:
			e.KV.Value = cloneValue(val)
		case EventDelete:
			if len(val) != 0 || e.KV.Version != 0 || e.KV.CreateRevision != 0 {
				r.fail("delete event with a value")
			}
		default:
			r.fail("unknown event type")
		}
		dst = append(dst, e)
	}
	if err := r.done(); err != nil {
		return dst[:start], err
	}
	return dst, nil
}

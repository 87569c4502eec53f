package metadata

import (
	"errors"
	"fmt"

	"github.com/magnetar-mq/magnetar/internal/wire"
)

// ErrCorrupt means bytes read from disk or from the Raft log (a stored
// record, a history entry, a command, a snapshot) could not be decoded.
var ErrCorrupt = errors.New("metadata: corrupt data")

// ErrInvalidKey is returned by Put and Delete for an empty key.
var ErrInvalidKey = errors.New("metadata: invalid key")

// recordFormat is the first byte of every stored value record and history
// entry, so the layout can change later without guessing. Format 2 added
// the key's lease; format 1 records (no lease) are still read.
const (
	recordFormat   = 2
	recordFormatV1 = 1
)

// corrupt wraps an error of a wire.Reader in ErrCorrupt.
func corrupt(err error) error { return fmt.Errorf("%w: %w", ErrCorrupt, err) }

// cloneValue copies b; an empty value decodes as an empty non-nil slice so
// that "present with no bytes" looks the same everywhere.
func cloneValue(b []byte) []byte { return append([]byte{}, b...) }

// appendKVRecord encodes the stored form of a key's value (the key itself is
// the Pebble key):
//
//	format | version varint | createRevision varint | modRevision varint | lease varint | len(value) uvarint | value
//
// (format 1 has no lease.)
func appendKVRecord(dst []byte, kv *KV) []byte {
	dst = append(dst, recordFormat)
	dst = wire.AppendVarint(dst, kv.Version)
	dst = wire.AppendVarint(dst, kv.CreateRevision)
	dst = wire.AppendVarint(dst, kv.ModRevision)
	dst = wire.AppendVarint(dst, int64(kv.Lease))
	return wire.AppendBytes(dst, kv.Value)
}

// readFormat reads a record's format byte, failing r on an unknown one.
func readFormat(r *wire.Reader) byte {
	f := r.Byte()
	if r.Err() == nil && f != recordFormat && f != recordFormatV1 {
		r.Fail("unknown record format")
	}
	return f
}

// readLease reads a lease of a format-2 record (none in format 1).
func readLease(r *wire.Reader, format byte) LeaseID {
	if format == recordFormatV1 {
		return NoLease
	}
	id := LeaseID(r.Varint())
	if id < 0 {
		r.Fail("negative lease")
	}
	return id
}

// decodeKVRecord decodes a record written by appendKVRecord; the value is
// copied.
func decodeKVRecord(key string, b []byte) (KV, error) {
	r := wire.NewReader(b)
	f := readFormat(&r)
	kv := KV{Key: key, Version: r.Varint(), CreateRevision: r.Varint(), ModRevision: r.Varint()}
	kv.Lease = readLease(&r, f)
	v := r.Bytes()
	if err := r.Done(); err != nil {
		return KV{}, corrupt(err)
	}
	kv.Value = cloneValue(v)
	return kv, nil
}

// appendEvents encodes the events of one revision as a history entry (the
// revision is the Pebble key and every event's ModRevision):
//
//	format | count uvarint | count × (type byte | key | value | version varint | createRevision varint | lease varint)
//
// (format 1 has no lease.)
func appendEvents(dst []byte, evs []Event) []byte {
	dst = append(dst, recordFormat)
	dst = wire.AppendUvarint(dst, uint64(len(evs)))
	for i := range evs {
		e := &evs[i]
		dst = append(dst, byte(e.Type))
		dst = wire.AppendString(dst, e.KV.Key)
		dst = wire.AppendBytes(dst, e.KV.Value)
		dst = wire.AppendVarint(dst, e.KV.Version)
		dst = wire.AppendVarint(dst, e.KV.CreateRevision)
		dst = wire.AppendVarint(dst, int64(e.KV.Lease))
	}
	return dst
}

// minEventSize is the fewest bytes one encoded event takes; it bounds the
// count read from a history entry before anything is allocated.
const minEventSize = 5

// decodeEvents decodes a history entry written by appendEvents for revision
// rev, appending the events to dst. Keys and values are copied.
func decodeEvents(dst []Event, rev int64, b []byte) ([]Event, error) {
	r := wire.NewReader(b)
	f := readFormat(&r)
	n := r.Count(minEventSize)
	start := len(dst)
	for i := 0; i < n && r.Err() == nil; i++ {
		typ := EventType(r.Byte())
		key := r.Bytes()
		val := r.Bytes()
		e := Event{Type: typ, KV: KV{Key: string(key), Version: r.Varint(), CreateRevision: r.Varint(), ModRevision: rev}}
		e.KV.Lease = readLease(&r, f)
		switch typ {
		case EventPut:
			e.KV.Value = cloneValue(val)
		case EventDelete:
			if len(val) != 0 || e.KV.Version != 0 || e.KV.CreateRevision != 0 || e.KV.Lease != NoLease {
				r.Fail("delete event with a value")
			}
		default:
			r.Fail("unknown event type")
		}
		dst = append(dst, e)
	}
	if err := r.Done(); err != nil {
		return dst[:start], corrupt(err)
	}
	return dst, nil
}

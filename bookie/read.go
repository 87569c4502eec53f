package bookie

import (
	"bytes"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/magnetar-mq/magnetar/internal/record"
)

// readEntries reads the committed entries of a segment from the one
// holding fromOffset onwards, up to about maxBytes (at least one entry),
// from the state r and, for entries it references there, the Raft log wal
// (the caller holds the log: pinSet.hold). Every entry's CRC is verified,
// and its key must match its base offset: a corrupt entry fails the read
// with ErrCorrupt rather than be returned.
func readEntries(r pebble.Reader, wal logGetter, segment uint64, fromOffset int64, maxBytes int) ([]Entry, error) {
	info, ok, err := getMeta(r, segment)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: segment %d", ErrSegmentNotFound, segment)
	}
	if fromOffset >= info.NextOffset {
		return nil, nil
	}
	lo, hi := entrySpan(segment)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	// The entry holding fromOffset is the last one starting at or before
	// it; if fromOffset is before the segment's first entry, start there.
	if from := max(fromOffset, 0); !it.SeekLT(entryKey(segment, from+1)) {
		it.First()
	}
	var out []Entry
	size := 0
	res := entryResolver{log: wal}
	for ; it.Valid() && (len(out) == 0 || size < maxBytes); it.Next() {
		stored, err := it.ValueAndErr()
		if err != nil {
			return nil, err
		}
		v, err := res.resolve(stored)
		if err != nil {
			return nil, fmt.Errorf("segment %d entry at offset %d: %w", segment, entryKeyOffset(it.Key()), err)
		}
		h, err := record.VerifyCRC(v)
		if err != nil || h.Size() != len(v) || h.BaseOffset != entryKeyOffset(it.Key()) {
			return nil, fmt.Errorf("%w: segment %d entry at offset %d: %v", ErrCorrupt, segment, entryKeyOffset(it.Key()), err)
		}
		if h.LastOffset() < fromOffset {
			continue // the entry before the one holding fromOffset
		}
		if _, ref := parseLogRef(stored); !ref {
			v = bytes.Clone(v) // the iterator's; resolved entries are our own
		}
		out = append(out, Entry{BaseOffset: h.BaseOffset, LastOffset: h.LastOffset(), Data: v})
		size += len(v)
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	return out, nil
}

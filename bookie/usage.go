package bookie

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Usage is what a shard replica stores, as of the entries it has applied:
// the load figures by which new segments are placed (see package registry).
type Usage struct {
	// Segments counts the segments, open ones included.
	Segments int64
	// OpenSegments counts the segments that take appends.
	OpenSegments int64
	// Bytes is the total size of the entries stored.
	Bytes int64
}

// Usage sums the segments' metadata on this replica. It reads every
// segment's small metadata record (not the entries), so it costs about a
// millisecond per ten thousand segments; call it every few seconds, not
// per request.
func (s *Shard) Usage(ctx context.Context) (Usage, error) {
	if err := s.enter(ctx); err != nil {
		return Usage{}, err
	}
	defer s.exit()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefixMeta, UpperBound: endMeta})
	if err != nil {
		return Usage{}, err
	}
	defer it.Close()
	var u Usage
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != len(prefixMeta)+8 {
			return Usage{}, fmt.Errorf("%w: segment metadata key %x", ErrCorrupt, k)
		}
		info, err := decodeMeta(binary.BigEndian.Uint64(k[len(prefixMeta):]), it.Value())
		if err != nil {
			return Usage{}, err
		}
		u.Segments++
		if info.State == SegmentOpen {
			u.OpenSegments++
		}
		u.Bytes += info.Bytes
	}
	return u, it.Error()
}

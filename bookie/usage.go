package bookie

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// MaxListSegments caps the segments one ListSegments call returns.
const MaxListSegments = 10000

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
	var u Usage
	s.fsm.settle()
	err := scanMetas(s.db, 0, func(info SegmentInfo) bool {
		u.Segments++
		if info.State == SegmentOpen {
			u.OpenSegments++
		}
		u.Bytes += info.Bytes
		return true
	})
	return u, err
}

// ListSegments implements Client.
func (s *Shard) ListSegments(ctx context.Context, after uint64, limit int) ([]SegmentInfo, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.exit()
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	limit = listLimit(limit)
	var out []SegmentInfo
	s.fsm.settle()
	err := scanMetas(s.db, after, func(info SegmentInfo) bool {
		out = append(out, info)
		return len(out) < limit
	})
	return out, err
}

// listLimit is ListSegments's limit: at most MaxListSegments, which is
// also what zero or less asks for.
func listLimit(limit int) int {
	if limit <= 0 || limit > MaxListSegments {
		return MaxListSegments
	}
	return limit
}

// scanMetas calls fn with the metadata of each segment whose ID is above
// after, in ID order, until fn returns false.
func scanMetas(r pebble.Reader, after uint64, fn func(SegmentInfo) bool) error {
	lower := prefixMeta
	if after > 0 {
		if after == ^uint64(0) {
			return nil
		}
		lower = metaKey(after + 1)
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: endMeta})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != len(prefixMeta)+8 {
			return fmt.Errorf("%w: segment metadata key %x", ErrCorrupt, k)
		}
		info, err := decodeMeta(binary.BigEndian.Uint64(k[len(prefixMeta):]), it.Value())
		if err != nil {
			return err
		}
		if !fn(info) {
			break
		}
	}
	return it.Error()
}

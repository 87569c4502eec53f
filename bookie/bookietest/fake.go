package bookietest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/internal/record"
)

// Fake is an in-memory bookie.Client for unit tests. It enforces the same
// rules as a shard (epochs, sealing, dense offsets, entry CRCs) and copies
// appended entries, so callers may reuse their buffers. It is safe for
// concurrent use; every call is linearizable.
type Fake struct {
	mu struct {
		sync.Mutex
		segments map[uint64]*fakeSegment
		closed   bool
	}
}

type fakeSegment struct {
	info    bookie.SegmentInfo
	entries []bookie.Entry // by base offset
}

var _ bookie.Client = (*Fake)(nil)

// NewFake returns an empty Fake.
func NewFake() *Fake {
	f := &Fake{}
	f.mu.segments = make(map[uint64]*fakeSegment)
	return f
}

// Close makes every later call fail with bookie.ErrClosed.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.closed = true
	return nil
}

// lock takes the mutex unless ctx is done or the Fake is closed.
func (f *Fake) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	if f.mu.closed {
		f.mu.Unlock()
		return bookie.ErrClosed
	}
	return nil
}

func (f *Fake) segmentLocked(id uint64) (*fakeSegment, error) {
	s, ok := f.mu.segments[id]
	if !ok {
		return nil, fmt.Errorf("%w: segment %d", bookie.ErrSegmentNotFound, id)
	}
	return s, nil
}

// CreateSegment implements bookie.Client.
func (f *Fake) CreateSegment(ctx context.Context, segment uint64, startOffset int64, epoch uint64) error {
	if err := f.lock(ctx); err != nil {
		return err
	}
	defer f.mu.Unlock()
	if _, ok := f.mu.segments[segment]; ok {
		return fmt.Errorf("%w: segment %d", bookie.ErrSegmentExists, segment)
	}
	if startOffset < 0 {
		return fmt.Errorf("%w: negative start offset %d", bookie.ErrBadOffset, startOffset)
	}
	f.mu.segments[segment] = &fakeSegment{info: bookie.SegmentInfo{
		ID: segment, State: bookie.SegmentOpen, Epoch: epoch, StartOffset: startOffset, NextOffset: startOffset,
	}}
	return nil
}

// Append implements bookie.Client.
func (f *Fake) Append(ctx context.Context, req bookie.AppendRequest) (int64, error) {
	if err := f.lock(ctx); err != nil {
		return 0, err
	}
	defer f.mu.Unlock()
	s, err := f.segmentLocked(req.Segment)
	if err != nil {
		return 0, err
	}
	if req.Epoch < s.info.Epoch {
		return 0, fmt.Errorf("%w: segment %d has epoch %d, writer %d", bookie.ErrFenced, req.Segment, s.info.Epoch, req.Epoch)
	}
	if s.info.State == bookie.SegmentSealed {
		return 0, fmt.Errorf("%w: segment %d", bookie.ErrSegmentSealed, req.Segment)
	}
	next := s.info.NextOffset
	added := make([]bookie.Entry, 0, len(req.Entries))
	var size int64
	for i, e := range req.Entries {
		h, err := record.VerifyCRC(e)
		if err != nil {
			return 0, fmt.Errorf("%w: entry %d: %w", bookie.ErrCorrupt, i, err)
		}
		if h.Size() != len(e) {
			return 0, fmt.Errorf("%w: entry %d is %d bytes, its batch %d", bookie.ErrCorrupt, i, len(e), h.Size())
		}
		if h.BaseOffset != next {
			return 0, fmt.Errorf("%w: entry %d starts at %d, next offset is %d", bookie.ErrBadOffset, i, h.BaseOffset, next)
		}
		added = append(added, bookie.Entry{BaseOffset: h.BaseOffset, LastOffset: h.LastOffset(), Data: slices.Clone(e)})
		next = h.NextOffset()
		size += int64(len(e))
	}
	s.entries = append(s.entries, added...)
	s.info.Epoch = max(s.info.Epoch, req.Epoch)
	s.info.NextOffset = next
	s.info.Bytes += size
	return next, nil
}

// Seal implements bookie.Client.
func (f *Fake) Seal(ctx context.Context, segment uint64, epoch uint64, startOffset int64) (bookie.SegmentInfo, error) {
	if err := f.lock(ctx); err != nil {
		return bookie.SegmentInfo{}, err
	}
	defer f.mu.Unlock()
	s, ok := f.mu.segments[segment]
	if !ok {
		if startOffset < 0 {
			return bookie.SegmentInfo{}, fmt.Errorf("%w: negative start offset %d", bookie.ErrBadOffset, startOffset)
		}
		s = &fakeSegment{info: bookie.SegmentInfo{
			ID: segment, State: bookie.SegmentSealed, Epoch: epoch, StartOffset: startOffset, NextOffset: startOffset,
		}}
		f.mu.segments[segment] = s
		return s.info, nil
	}
	if s.info.State == bookie.SegmentOpen && epoch < s.info.Epoch {
		return bookie.SegmentInfo{}, fmt.Errorf("%w: segment %d has epoch %d, sealer %d", bookie.ErrFenced, segment, s.info.Epoch, epoch)
	}
	s.info.State = bookie.SegmentSealed
	s.info.Epoch = max(s.info.Epoch, epoch)
	return s.info, nil
}

// Read implements bookie.Client. The returned entries share the Fake's
// copies; callers must not modify them.
func (f *Fake) Read(ctx context.Context, segment uint64, fromOffset int64, maxBytes int) ([]bookie.Entry, error) {
	if err := f.lock(ctx); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	s, err := f.segmentLocked(segment)
	if err != nil {
		return nil, err
	}
	// The first entry whose last offset is at or after fromOffset.
	i, _ := slices.BinarySearchFunc(s.entries, fromOffset, func(e bookie.Entry, off int64) int {
		if e.LastOffset < off {
			return -1
		}
		return 1
	})
	var out []bookie.Entry
	size := 0
	for ; i < len(s.entries) && (len(out) == 0 || size < maxBytes); i++ {
		out = append(out, s.entries[i])
		size += len(s.entries[i].Data)
	}
	return out, nil
}

// Info implements bookie.Client.
func (f *Fake) Info(ctx context.Context, segment uint64) (bookie.SegmentInfo, error) {
	if err := f.lock(ctx); err != nil {
		return bookie.SegmentInfo{}, err
	}
	defer f.mu.Unlock()
	s, err := f.segmentLocked(segment)
	if err != nil {
		return bookie.SegmentInfo{}, err
	}
	return s.info, nil
}

// DeleteSegment implements bookie.Client.
func (f *Fake) DeleteSegment(ctx context.Context, segment uint64) error {
	if err := f.lock(ctx); err != nil {
		return err
	}
	defer f.mu.Unlock()
	if _, err := f.segmentLocked(segment); err != nil {
		return err
	}
	delete(f.mu.segments, segment)
	return nil
}

// ListSegments implements bookie.Client.
func (f *Fake) ListSegments(ctx context.Context, after uint64, limit int) ([]bookie.SegmentInfo, error) {
	if err := f.lock(ctx); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	if limit <= 0 || limit > bookie.MaxListSegments {
		limit = bookie.MaxListSegments
	}
	var out []bookie.SegmentInfo
	for _, id := range slices.Sorted(maps.Keys(f.mu.segments)) {
		if id > after && len(out) < limit {
			out = append(out, f.mu.segments[id].info)
		}
	}
	return out, nil
}

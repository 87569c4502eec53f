package bookie

import (
	"context"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// inflight bounds the bytes of appends a shard has taken in and not yet
// answered: an append waits for room before its command is built and
// proposed. When the disk (or a follower) is slow, Raft's batches take
// longer, appends queue here instead of in Raft's and Pebble's buffers,
// and each writer waits for its answer, so a slow disk slows the writers
// without growing the heap. An append larger than the whole bound takes
// all of it.
type inflight struct {
	sem   *semaphore.Weighted
	limit int64
	cur   atomic.Int64
	peak  atomic.Int64 // the most bytes ever in flight
	waits atomic.Int64 // appends that found no room and waited
}

func newInflight(limit int64) *inflight {
	return &inflight{sem: semaphore.NewWeighted(limit), limit: limit}
}

// acquire waits for room for n bytes and returns the weight to release.
func (f *inflight) acquire(ctx context.Context, n int64) (int64, error) {
	n = max(min(n, f.limit), 1)
	if !f.sem.TryAcquire(n) {
		f.waits.Add(1)
		if err := f.sem.Acquire(ctx, n); err != nil {
			return 0, err
		}
	}
	cur := f.cur.Add(n)
	for {
		p := f.peak.Load()
		if cur <= p || f.peak.CompareAndSwap(p, cur) {
			return n, nil
		}
	}
}

func (f *inflight) release(n int64) {
	f.cur.Add(-n)
	f.sem.Release(n)
}

package broker

import (
	"fmt"
	"iter"
	"slices"
	"sort"

	"github.com/RoaringBitmap/roaring/v2"
)

// ackSet holds the offsets a subscription acknowledged individually above
// its next offset, compactly, however scattered: offsets are grouped in
// chunks of 65,536 (offset >> 16) and each chunk is a Roaring bitmap of the
// low 16 bits — a sorted array while it holds up to 4,096 offsets, else an
// 8 KiB bitmap, or runs, whichever is smallest. A million acknowledgements
// of every other offset take about 250 KiB (a slice of ranges took 40
// MiB). Each chunk is persisted as its own metadata row (AckChunk), and a
// flush rewrites only the chunks that changed since the last one.
type ackSet struct {
	chunks map[int64]*roaring.Bitmap
	keys   []int64            // of chunks, sorted
	dirty  map[int64]struct{} // chunks changed (or gone) since the last flush
}

const (
	chunkBits = 16
	chunkMask = 1<<chunkBits - 1
)

func chunkOf(off int64) (int64, uint32) { return off >> chunkBits, uint32(off & chunkMask) }

func (a *ackSet) has(off int64) bool {
	k, low := chunkOf(off)
	bm := a.chunks[k]
	return bm != nil && bm.Contains(low)
}

// add adds off; false if it was there already.
func (a *ackSet) add(off int64) bool {
	k, low := chunkOf(off)
	bm := a.chunks[k]
	if bm == nil {
		if a.chunks == nil {
			a.chunks = make(map[int64]*roaring.Bitmap)
		}
		bm = roaring.New()
		a.chunks[k] = bm
		i, _ := slices.BinarySearch(a.keys, k)
		a.keys = slices.Insert(a.keys, i, k)
	}
	if !bm.CheckedAdd(low) {
		return false
	}
	a.markDirty(k)
	return true
}

// addRange adds [start, end) (a cursor row's range from before chunks).
func (a *ackSet) addRange(start, end int64) {
	for start < end {
		k, low := chunkOf(start)
		stop := min(end, (k+1)<<chunkBits)
		a.add(start) // creates the chunk and marks it dirty
		a.chunks[k].AddRange(uint64(low), uint64(low)+uint64(stop-start))
		start = stop
	}
}

func (a *ackSet) markDirty(k int64) {
	if a.dirty == nil {
		a.dirty = make(map[int64]struct{})
	}
	a.dirty[k] = struct{}{}
}

// firstAbsent returns the first offset at or after from that is not in
// the set.
func (a *ackSet) firstAbsent(from int64) int64 {
	for {
		k, low := chunkOf(from)
		bm := a.chunks[k]
		if bm == nil {
			return from
		}
		if v := firstAbsentIn(bm, low); v <= chunkMask {
			return k<<chunkBits | int64(v)
		}
		from = (k + 1) << chunkBits // the chunk is full from low on
	}
}

// firstAbsentIn returns the first value at or after low missing from bm, or
// chunkMask+1 if there is none. It searches by rank: [low, x] is all in bm
// exactly when bm holds x-low+1 values there. (Roaring's NextAbsentValue
// answers wrongly past a 64-value word of a full container.)
func firstAbsentIn(bm *roaring.Bitmap, low uint32) uint32 {
	if !bm.Contains(low) {
		return low
	}
	var before uint64
	if low > 0 {
		before = bm.Rank(low - 1)
	}
	n := int(chunkMask - low) // candidates low+1 .. chunkMask
	i := sort.Search(n, func(i int) bool {
		x := low + 1 + uint32(i)
		return bm.Rank(x)-before < uint64(x-low+1)
	})
	return low + 1 + uint32(i)
}

// dropBelow forgets the offsets below next.
func (a *ackSet) dropBelow(next int64) {
	nk, low := chunkOf(next)
	for len(a.keys) > 0 && a.keys[0] <= nk {
		k := a.keys[0]
		bm := a.chunks[k]
		if k == nk {
			if bm.Minimum() >= low {
				break
			}
			bm.RemoveRange(0, uint64(low))
			a.markDirty(k)
			if !bm.IsEmpty() {
				break
			}
		}
		delete(a.chunks, k)
		a.keys = a.keys[1:]
		a.markDirty(k)
	}
}

// clear empties the set; its chunks are deleted at the next flush.
func (a *ackSet) clear() {
	for _, k := range a.keys {
		a.markDirty(k)
	}
	a.chunks, a.keys = nil, nil
}

// countBelow returns how many offsets of the set are below end.
func (a *ackSet) countBelow(end int64) int64 {
	ek, low := chunkOf(end)
	var n int64
	for _, k := range a.keys {
		switch {
		case k < ek:
			n += int64(a.chunks[k].GetCardinality())
		case k == ek && low > 0:
			n += int64(a.chunks[k].Rank(low - 1))
		}
		if k >= ek {
			break
		}
	}
	return n
}

// runs yields the set as maximal ranges [start, end), in order.
func (a *ackSet) runs() iter.Seq2[int64, int64] {
	return func(yield func(int64, int64) bool) {
		start, end := int64(-1), int64(-1)
		for _, k := range a.keys {
			it := a.chunks[k].Iterator()
			for it.HasNext() {
				off := k<<chunkBits | int64(it.Next())
				if off == end {
					end++
					continue
				}
				if start >= 0 && !yield(start, end) {
					return
				}
				start, end = off, off+1
			}
		}
		if start >= 0 {
			yield(start, end)
		}
	}
}

// takeDirty returns the chunks changed since the last call, each in its
// persisted form (nil for a chunk gone), and forgets that they changed;
// restoreDirty marks them changed again after a failed flush.
func (a *ackSet) takeDirty() (map[int64][]byte, error) {
	out := make(map[int64][]byte, len(a.dirty))
	for k := range a.dirty {
		bm := a.chunks[k]
		if bm == nil {
			out[k] = nil
			continue
		}
		bm.RunOptimize()
		b, err := bm.ToBytes()
		if err != nil {
			return nil, err
		}
		out[k] = b
	}
	a.dirty = nil
	return out, nil
}

func (a *ackSet) restoreDirty(chunks map[int64][]byte) {
	for k := range chunks {
		a.markDirty(k)
	}
}

// load adds a persisted chunk; a corrupt one is an error.
func (a *ackSet) load(k int64, data []byte) (err error) {
	bm := roaring.New()
	defer func() {
		if r := recover(); r != nil { // the library trusts its input
			err = fmt.Errorf("corrupt acknowledgement chunk: %v", r)
		}
	}()
	if err := bm.UnmarshalBinary(data); err != nil {
		return fmt.Errorf("corrupt acknowledgement chunk: %w", err)
	}
	if bm.IsEmpty() {
		return nil
	}
	if m := bm.Maximum(); m > chunkMask {
		return fmt.Errorf("corrupt acknowledgement chunk: offset %d outside its chunk", m)
	}
	if a.chunks == nil {
		a.chunks = make(map[int64]*roaring.Bitmap)
	}
	if _, ok := a.chunks[k]; !ok {
		i, _ := slices.BinarySearch(a.keys, k)
		a.keys = slices.Insert(a.keys, i, k)
	}
	a.chunks[k] = bm
	return nil
}

// len returns how many offsets the set holds.
func (a *ackSet) len() int64 {
	var n int64
	for _, bm := range a.chunks {
		n += int64(bm.GetCardinality())
	}
	return n
}

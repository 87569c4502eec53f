package segment

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"sort"

	"github.com/magnetar-mq/magnetar/internal/record"
)

// verifyChunk is how much VerifyData reads at a time.
const verifyChunk = 1 << 20

// Reader reads a segment object through a RangeReader. It holds the footer
// and both indexes in memory; data is read on demand.
type Reader struct {
	rr    RangeReader
	size  int64
	f     Footer
	offs  []offsetEntry
	times []timeEntry
}

type offsetEntry struct{ offset, pos int64 }

type timeEntry struct {
	// ts is the largest timestamp of the batches before the one at pos.
	ts int64
	// idx is the offset index entry of the same batch.
	idx int
}

// Open reads and validates the footer and indexes of the object of size
// bytes behind rr: two reads, the footer and then both indexes.
func Open(ctx context.Context, rr RangeReader, size int64) (*Reader, error) {
	if size < FooterSize+batchHeaderSize+OffsetEntrySize {
		return nil, fmt.Errorf("%w: object of %d bytes is too small", ErrCorrupt, size)
	}
	fb, err := readRange(ctx, rr, size-FooterSize, FooterSize)
	if err != nil {
		return nil, err
	}
	f, err := parseFooter(fb, size)
	if err != nil {
		return nil, err
	}
	// parseFooter checked that both indexes lie between the data and the
	// footer, so this read is bounded by size.
	idx, err := readRange(ctx, rr, f.OffsetIndexPos, int64(f.OffsetIndexLen)+int64(f.TimeIndexLen))
	if err != nil {
		return nil, err
	}
	offIdx, timeIdx := idx[:f.OffsetIndexLen], idx[f.OffsetIndexLen:]
	if got := crc32.Checksum(offIdx, castagnoli); got != f.OffsetIndexCRC {
		return nil, fmt.Errorf("%w: offset index CRC stored %#08x, computed %#08x", ErrCorrupt, f.OffsetIndexCRC, got)
	}
	if got := crc32.Checksum(timeIdx, castagnoli); got != f.TimeIndexCRC {
		return nil, fmt.Errorf("%w: time index CRC stored %#08x, computed %#08x", ErrCorrupt, f.TimeIndexCRC, got)
	}
	r := &Reader{rr: rr, size: size, f: f}
	if r.offs, err = parseOffsetIndex(offIdx, &f); err != nil {
		return nil, err
	}
	if r.times, err = parseTimeIndex(timeIdx, &f, r.offs); err != nil {
		return nil, err
	}
	return r, nil
}

// parseOffsetIndex decodes the offset index: the first entry is the first
// batch, then offsets and positions strictly increase, at least a batch
// header apart, within the data and the footer's offsets.
func parseOffsetIndex(b []byte, f *Footer) ([]offsetEntry, error) {
	offs := make([]offsetEntry, 0, len(b)/OffsetEntrySize)
	for i := 0; i < len(b); i += OffsetEntrySize {
		e := offsetEntry{
			offset: int64(binary.BigEndian.Uint64(b[i:])),
			pos:    int64(binary.BigEndian.Uint64(b[i+8:])),
		}
		n := len(offs)
		switch {
		case n == 0 && (e.offset != f.BaseOffset || e.pos != 0):
			return nil, fmt.Errorf("%w: first offset index entry %d@%d, want %d@0", ErrCorrupt, e.offset, e.pos, f.BaseOffset)
		case n > 0 && (e.offset <= offs[n-1].offset || e.pos < offs[n-1].pos+batchHeaderSize):
			return nil, fmt.Errorf("%w: offset index entry %d (%d@%d) does not follow %d@%d", ErrCorrupt, n, e.offset, e.pos, offs[n-1].offset, offs[n-1].pos)
		case e.offset > f.LastOffset || e.pos > f.DataLen-batchHeaderSize:
			return nil, fmt.Errorf("%w: offset index entry %d (%d@%d) outside the segment", ErrCorrupt, n, e.offset, e.pos)
		}
		offs = append(offs, e)
	}
	return offs, nil
}

// parseTimeIndex decodes the time index: timestamps strictly increase
// within the footer's range, and each entry names a batch of the offset
// index other than the first, in order.
func parseTimeIndex(b []byte, f *Footer, offs []offsetEntry) ([]timeEntry, error) {
	times := make([]timeEntry, 0, len(b)/TimeEntrySize)
	j := 1
	for i := 0; i < len(b); i += TimeEntrySize {
		ts := int64(binary.BigEndian.Uint64(b[i:]))
		off := int64(binary.BigEndian.Uint64(b[i+8:]))
		pos := int64(binary.BigEndian.Uint64(b[i+16:]))
		n := len(times)
		if (n > 0 && ts <= times[n-1].ts) || ts < f.MinTimestamp || ts > f.MaxTimestamp {
			return nil, fmt.Errorf("%w: time index entry %d: timestamp %d out of order or outside %d..%d", ErrCorrupt, n, ts, f.MinTimestamp, f.MaxTimestamp)
		}
		for j < len(offs) && offs[j].pos < pos {
			j++
		}
		if j == len(offs) || offs[j].pos != pos || offs[j].offset != off {
			return nil, fmt.Errorf("%w: time index entry %d (%d@%d) is not an offset index entry", ErrCorrupt, n, off, pos)
		}
		times = append(times, timeEntry{ts: ts, idx: j})
		j++
	}
	return times, nil
}

// Footer returns the object's footer.
func (r *Reader) Footer() Footer { return r.f }

// Find returns the position of the indexed batch at or before the batch
// holding offset: where a read for offset starts. ok is false if offset is
// outside the segment.
func (r *Reader) Find(offset int64) (pos int64, ok bool) {
	if offset < r.f.BaseOffset || offset > r.f.LastOffset {
		return 0, false
	}
	return r.offs[r.entryFor(offset)].pos, true
}

// entryFor returns the last offset index entry at or before offset, which
// must be in the segment.
func (r *Reader) entryFor(offset int64) int {
	return sort.Search(len(r.offs), func(i int) bool { return r.offs[i].offset > offset }) - 1
}

// FindTime returns the indexed batch (its base offset and position) at
// which a search for the first batch with a timestamp at or after ms
// starts: every batch before it has smaller timestamps, and the answer is
// within one index interval after it. ok is false if no batch of the
// segment has a timestamp at or after ms.
func (r *Reader) FindTime(ms int64) (offset, pos int64, ok bool) {
	if ms > r.f.MaxTimestamp {
		return 0, 0, false
	}
	e := r.offs[r.timeEntryFor(ms)]
	return e.offset, e.pos, true
}

// timeEntryFor returns the offset index entry where a search for ms starts.
func (r *Reader) timeEntryFor(ms int64) int {
	j := sort.Search(len(r.times), func(j int) bool { return r.times[j].ts >= ms }) - 1
	if j < 0 {
		return 0
	}
	return r.times[j].idx
}

// OffsetForTime returns the base offset of the first batch whose max
// timestamp is at or after ms, reading about one index interval of data.
// ok is false if there is none. A ListOffsets by time answers with the
// first record at or after ms within that batch.
func (r *Reader) OffsetForTime(ctx context.Context, ms int64) (offset int64, ok bool, err error) {
	if ms > r.f.MaxTimestamp {
		return 0, false, nil
	}
	i := r.timeEntryFor(ms)
	w, err := r.walk(ctx, i, r.regionEnd(i))
	if err != nil {
		return 0, false, err
	}
	for {
		size, err := w.peek()
		if err == io.EOF {
			return 0, false, fmt.Errorf("%w: no batch reaches max timestamp %d", ErrCorrupt, r.f.MaxTimestamp)
		}
		if err != nil {
			return 0, false, err
		}
		h, err := w.take(size)
		if err != nil {
			return 0, false, err
		}
		if h.MaxTimestamp >= ms {
			return h.BaseOffset, true, nil
		}
	}
}

// ReadBatches returns whole batches, as stored, from the one holding
// fromOffset (or the first after it, past a gap) up to maxBytes in all,
// and the offset after the last one returned. It returns at least one
// batch, however large. The first batch may start before fromOffset, as
// Kafka's fetch allows. It makes one range read unless the first batch
// alone is larger than the index interval plus maxBytes.
func (r *Reader) ReadBatches(ctx context.Context, fromOffset int64, maxBytes int) (batches []byte, next int64, err error) {
	if fromOffset < r.f.BaseOffset || fromOffset > r.f.LastOffset {
		return nil, 0, fmt.Errorf("%w: %d not in %d..%d", ErrOutOfRange, fromOffset, r.f.BaseOffset, r.f.LastOffset)
	}
	i := r.entryFor(fromOffset)
	// The batch holding fromOffset starts before the next index entry, so
	// reading maxBytes past it covers the batches to return.
	end := r.regionEnd(i)
	end += min(int64(max(maxBytes, 0)), r.f.DataLen-end)
	w, err := r.walk(ctx, i, end)
	if err != nil {
		return nil, 0, err
	}
	first := int64(-1)
	for {
		size, err := w.peek()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, err
		}
		if first >= 0 && w.p-first+size > int64(maxBytes) {
			break
		}
		h, err := w.take(size)
		if err != nil {
			return nil, 0, err
		}
		if first < 0 {
			if h.LastOffset() < fromOffset {
				continue
			}
			first = w.p - size
		}
		next = h.NextOffset()
	}
	if first < 0 {
		return nil, 0, fmt.Errorf("%w: data ends before offset %d", ErrCorrupt, fromOffset)
	}
	return w.buf[first:w.p:w.p], next, nil
}

// VerifyData checks the CRC-32C of every byte before the footer, reading
// the object in chunks of 1 MiB.
func (r *Reader) VerifyData(ctx context.Context) error {
	var crc uint32
	end := r.size - FooterSize
	for off := int64(0); off < end; {
		n := min(verifyChunk, end-off)
		b, err := readRange(ctx, r.rr, off, n)
		if err != nil {
			return err
		}
		crc = crc32.Update(crc, castagnoli, b)
		off += n
	}
	if crc != r.f.ObjectCRC {
		return fmt.Errorf("%w: object CRC stored %#08x, computed %#08x", ErrCorrupt, r.f.ObjectCRC, crc)
	}
	return nil
}

// regionEnd is where the data indexed by entry i ends: the next entry's
// position, or the end of the data.
func (r *Reader) regionEnd(i int) int64 {
	if i+1 < len(r.offs) {
		return r.offs[i+1].pos
	}
	return r.f.DataLen
}

// readRange reads n bytes at off, which the caller checked lie in the
// object.
func readRange(ctx context.Context, rr RangeReader, off, n int64) ([]byte, error) {
	b, err := rr.ReadRange(ctx, off, n)
	if err != nil {
		return nil, fmt.Errorf("segment: reading %d bytes at %d: %w", n, off, err)
	}
	if int64(len(b)) != n {
		return nil, fmt.Errorf("segment: reading %d bytes at %d: got %d: %w", n, off, len(b), io.ErrUnexpectedEOF)
	}
	return b, nil
}

// walker walks the batches of the data section from an offset index entry,
// reading more as it goes and checking each batch against the footer and
// the index entries it passes.
type walker struct {
	r     *Reader
	ctx   context.Context
	start int64  // object position of buf[0]
	buf   []byte // data read so far
	p     int64  // position in buf of the next batch
	k     int    // next offset index entry to meet
	next  int64  // smallest base offset the next batch may have
}

// walk starts a walker at offset index entry i, reading up to end.
func (r *Reader) walk(ctx context.Context, i int, end int64) (*walker, error) {
	start := r.offs[i].pos
	buf, err := readRange(ctx, r.rr, start, end-start)
	if err != nil {
		return nil, err
	}
	return &walker{r: r, ctx: ctx, start: start, buf: buf, k: i, next: r.offs[i].offset}, nil
}

// ensure reads enough to hold n bytes from the next batch, and at least an
// index interval more if it reads at all. The caller checked they lie in
// the data.
func (w *walker) ensure(n int64) error {
	need := w.start + w.p + n
	have := w.start + int64(len(w.buf))
	if need <= have {
		return nil
	}
	end := min(w.r.f.DataLen, max(need, have+int64(w.r.f.IndexInterval)))
	more, err := readRange(w.ctx, w.r.rr, have, end-have)
	if err != nil {
		return err
	}
	w.buf = append(w.buf, more...)
	return nil
}

// peek returns the size of the next batch, or io.EOF at the end of the
// data.
func (w *walker) peek() (int64, error) {
	pos := w.start + w.p
	if pos == w.r.f.DataLen {
		return 0, io.EOF
	}
	if pos+batchHeaderSize > w.r.f.DataLen {
		return 0, fmt.Errorf("%w: %d bytes at %d, less than a batch header", ErrCorrupt, w.r.f.DataLen-pos, pos)
	}
	if err := w.ensure(batchHeaderSize); err != nil {
		return 0, err
	}
	size := 12 + int64(int32(binary.BigEndian.Uint32(w.buf[w.p+8:])))
	if size < batchHeaderSize || size > w.r.f.DataLen-pos {
		return 0, fmt.Errorf("%w: batch at %d of %d bytes in %d data bytes", ErrCorrupt, pos, size, w.r.f.DataLen)
	}
	return size, nil
}

// take parses the next batch, of size bytes (from peek), and moves past it.
func (w *walker) take(size int64) (record.BatchHeader, error) {
	if err := w.ensure(size); err != nil {
		return record.BatchHeader{}, err
	}
	pos := w.start + w.p
	h, err := record.ParseHeader(w.buf[w.p : w.p+size])
	if err != nil {
		return h, fmt.Errorf("%w: batch at %d: %w", ErrCorrupt, pos, err)
	}
	if h.BaseOffset < w.next || h.LastOffset() > w.r.f.LastOffset {
		return h, fmt.Errorf("%w: batch at %d holds %d..%d, want offsets from %d to at most %d", ErrCorrupt, pos, h.BaseOffset, h.LastOffset(), w.next, w.r.f.LastOffset)
	}
	for ; w.k < len(w.r.offs) && w.r.offs[w.k].pos <= pos; w.k++ {
		if e := w.r.offs[w.k]; e.pos != pos || e.offset != h.BaseOffset {
			return h, fmt.Errorf("%w: index entry %d@%d, batch at %d holds %d", ErrCorrupt, e.offset, e.pos, pos, h.BaseOffset)
		}
	}
	w.p += size
	w.next = h.NextOffset()
	return h, nil
}

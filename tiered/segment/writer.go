package segment

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/magnetar-mq/magnetar/internal/record"
)

// WriterOptions configure a Writer.
type WriterOptions struct {
	// IndexInterval is the number of data bytes after an index entry past
	// which the next batch boundary gets an entry. Smaller intervals mean
	// larger indexes and shorter reads before the wanted batch.
	IndexInterval int `yaml:"index_interval_bytes"`
}

// RegisterFlags registers the options' flags under prefix with their
// defaults.
func (o *WriterOptions) RegisterFlags(prefix string, f *flag.FlagSet) {
	f.IntVar(&o.IndexInterval, prefix+"index-interval-bytes", DefaultIndexInterval,
		"Data bytes between the sparse index entries of an offloaded segment object.")
}

// Validate checks the options.
func (o *WriterOptions) Validate() error {
	if o.IndexInterval < batchHeaderSize || o.IndexInterval > MaxIndexInterval {
		return fmt.Errorf("segment: index interval %d outside [%d, %d]", o.IndexInterval, batchHeaderSize, MaxIndexInterval)
	}
	return nil
}

// Writer streams a segment object to an io.Writer: each appended entry is
// written at once, and the sparse indexes are kept in memory until Finish.
// After an error every call returns it.
type Writer struct {
	w        io.Writer
	interval int64
	err      error

	pos       int64  // bytes written
	crc       uint32 // CRC-32C of the bytes written
	nextIndex int64  // data position past which the next boundary is indexed
	nextOff   int64  // smallest offset the next batch may have
	runMaxTS  int64  // largest max timestamp of the batches written
	f         Footer
	offIdx    []byte
	timeIdx   []byte
	lastTSEnt int64 // timestamp of the last time index entry
}

// NewWriter returns a Writer to w. Zero options take their defaults.
func NewWriter(w io.Writer, opts WriterOptions) (*Writer, error) {
	if opts.IndexInterval == 0 {
		opts.IndexInterval = DefaultIndexInterval
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Writer{
		w:         w,
		interval:  int64(opts.IndexInterval),
		nextOff:   0,
		runMaxTS:  math.MinInt64,
		lastTSEnt: math.MinInt64,
	}, nil
}

// Append writes one stored entry: data holds one or more whole RecordBatch
// v2 batches, the first based at baseOffset and the last ending at
// lastOffset, all after the offsets already written. Each batch header is
// validated (record.ParseHeader); batch CRCs are left to consumers, as on
// the segment store.
func (w *Writer) Append(baseOffset, lastOffset int64, data []byte) error {
	if w.err != nil {
		return w.err
	}
	if baseOffset < w.nextOff || lastOffset < baseOffset || lastOffset == math.MaxInt64 {
		return fmt.Errorf("%w: offsets %d..%d after %d", ErrBadEntry, baseOffset, lastOffset, w.nextOff-1)
	}
	if len(data) == 0 {
		return fmt.Errorf("%w: no batches", ErrBadEntry)
	}
	// Validate the whole entry before writing any of it, so a bad entry
	// leaves the writer usable.
	next, batches := baseOffset, 0
	for b := data; len(b) > 0; batches++ {
		h, err := record.ParseHeader(b)
		if err != nil {
			return fmt.Errorf("%w: batch %d: %w", ErrBadEntry, batches, err)
		}
		if (batches == 0 && h.BaseOffset != baseOffset) || h.BaseOffset < next {
			return fmt.Errorf("%w: batch %d based at %d, want %d or later (entry at %d)", ErrBadEntry, batches, h.BaseOffset, next, baseOffset)
		}
		next = h.NextOffset()
		b = b[h.Size():]
	}
	if next-1 != lastOffset {
		return fmt.Errorf("%w: batches end at %d, entry at %d", ErrBadEntry, next-1, lastOffset)
	}
	if int64(w.f.BatchCount)+int64(batches) > math.MaxUint32 {
		return fmt.Errorf("%w: more than %d batches", ErrBadEntry, uint32(math.MaxUint32))
	}

	for b := data; len(b) > 0; {
		h, _ := record.ParseHeader(b) // validated above
		w.indexBatch(h)
		b = b[h.Size():]
		w.pos += int64(h.Size())
	}
	if _, err := w.w.Write(data); err != nil {
		w.err = fmt.Errorf("segment: writing data: %w", err)
		return w.err
	}
	w.crc = crc32.Update(w.crc, castagnoli, data)
	w.nextOff = lastOffset + 1
	return nil
}

// indexBatch accounts for the batch h about to be written at w.pos.
func (w *Writer) indexBatch(h record.BatchHeader) {
	if w.pos == 0 || w.pos >= w.nextIndex {
		w.offIdx = binary.BigEndian.AppendUint64(w.offIdx, uint64(h.BaseOffset))
		w.offIdx = binary.BigEndian.AppendUint64(w.offIdx, uint64(w.pos))
		w.nextIndex = w.pos + w.interval
		// The time entry holds the largest timestamp before this batch. A
		// run of boundaries with the same one keeps only the last, so a
		// lookup starts at most one interval before its answer.
		if w.pos > 0 {
			if len(w.timeIdx) > 0 && w.runMaxTS == w.lastTSEnt {
				w.timeIdx = w.timeIdx[:len(w.timeIdx)-TimeEntrySize]
			}
			w.timeIdx = binary.BigEndian.AppendUint64(w.timeIdx, uint64(w.runMaxTS))
			w.timeIdx = binary.BigEndian.AppendUint64(w.timeIdx, uint64(h.BaseOffset))
			w.timeIdx = binary.BigEndian.AppendUint64(w.timeIdx, uint64(w.pos))
			w.lastTSEnt = w.runMaxTS
		}
	}
	minTS := h.BaseTimestamp
	if h.TimestampType() == record.LogAppendTime {
		minTS = h.MaxTimestamp
	}
	if w.f.BatchCount == 0 {
		w.f.BaseOffset, w.f.MinTimestamp, w.f.MaxTimestamp = h.BaseOffset, minTS, h.MaxTimestamp
	}
	w.f.MinTimestamp = min(w.f.MinTimestamp, minTS, h.MaxTimestamp)
	w.f.MaxTimestamp = max(w.f.MaxTimestamp, h.MaxTimestamp)
	w.f.LastOffset = h.LastOffset()
	w.f.RecordCount += int64(h.NumRecords)
	w.f.BatchCount++
	w.runMaxTS = max(w.runMaxTS, h.MaxTimestamp)
}

// Finish writes the indexes and the footer and returns the footer. The
// Writer is done afterwards.
func (w *Writer) Finish() (Footer, error) {
	if w.err != nil {
		return Footer{}, w.err
	}
	if w.f.BatchCount == 0 {
		return Footer{}, ErrEmpty
	}
	if len(w.offIdx) > math.MaxUint32 || len(w.timeIdx) > math.MaxUint32 {
		w.err = fmt.Errorf("segment: indexes of %d and %d bytes exceed 4 GiB: raise the index interval", len(w.offIdx), len(w.timeIdx))
		return Footer{}, w.err
	}
	f := w.f
	f.DataLen = w.pos
	f.OffsetIndexPos = w.pos
	f.OffsetIndexLen = uint32(len(w.offIdx))
	f.OffsetIndexCRC = crc32.Checksum(w.offIdx, castagnoli)
	f.TimeIndexPos = w.pos + int64(len(w.offIdx))
	f.TimeIndexLen = uint32(len(w.timeIdx))
	f.TimeIndexCRC = crc32.Checksum(w.timeIdx, castagnoli)
	f.IndexInterval = uint32(w.interval)
	crc := crc32.Update(w.crc, castagnoli, w.offIdx)
	f.ObjectCRC = crc32.Update(crc, castagnoli, w.timeIdx)

	tail := make([]byte, 0, len(w.offIdx)+len(w.timeIdx)+FooterSize)
	tail = append(tail, w.offIdx...)
	tail = append(tail, w.timeIdx...)
	tail = f.appendTo(tail)
	if _, err := w.w.Write(tail); err != nil {
		w.err = fmt.Errorf("segment: writing indexes and footer: %w", err)
		return Footer{}, w.err
	}
	w.err = errFinished
	return f, nil
}

var errFinished = errors.New("segment: writer finished")

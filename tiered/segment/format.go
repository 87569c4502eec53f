package segment

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

// Sentinel errors. Errors returned by this package wrap one of them.
var (
	// ErrCorrupt means the object is not a valid segment object: a bad
	// magic or checksum, a layout that does not fit its size, indexes out of
	// order, or a batch that does not match them.
	ErrCorrupt = errors.New("segment: corrupt object")
	// ErrVersion means the object is in a format version this package does
	// not read.
	ErrVersion = errors.New("segment: unsupported format version")
	// ErrBadEntry means Writer.Append was given an entry that is not whole,
	// valid batches continuing the segment's offsets.
	ErrBadEntry = errors.New("segment: bad entry")
	// ErrEmpty means Writer.Finish was called before any entry was appended.
	ErrEmpty = errors.New("segment: no entries")
	// ErrOutOfRange means an offset is outside the segment.
	ErrOutOfRange = errors.New("segment: offset out of range")
)

// Format constants. See docs/tiered-format.md.
const (
	// Magic opens and closes the footer.
	Magic = "MAGSEGMT"
	// Version is the format version this package writes and reads.
	Version = 1
	// FooterSize is the fixed size of the footer, the last bytes of the
	// object.
	FooterSize = 128
	// OffsetEntrySize is the size of an offset index entry: base offset and
	// position of a batch.
	OffsetEntrySize = 16
	// TimeEntrySize is the size of a time index entry: the largest timestamp
	// of the batches before a batch, its base offset and its position.
	TimeEntrySize = 24
	// DefaultIndexInterval is the default number of data bytes between
	// index entries.
	DefaultIndexInterval = 64 << 10
	// MaxIndexInterval bounds IndexInterval: the footer stores it in 32 bits.
	MaxIndexInterval = 1 << 30

	// batchHeaderSize is the size of a RecordBatch v2 header, the smallest
	// batch.
	batchHeaderSize = 61
)

// Footer field offsets.
const (
	ftMagic         = 0
	ftVersion       = 8
	ftFlags         = 10
	ftFooterSize    = 12
	ftDataPos       = 16
	ftDataLen       = 24
	ftOffsetIdxPos  = 32
	ftOffsetIdxLen  = 40
	ftOffsetIdxCRC  = 44
	ftTimeIdxPos    = 48
	ftTimeIdxLen    = 56
	ftTimeIdxCRC    = 60
	ftBaseOffset    = 64
	ftLastOffset    = 72
	ftMinTimestamp  = 80
	ftMaxTimestamp  = 88
	ftRecordCount   = 96
	ftBatchCount    = 104
	ftIndexInterval = 108
	ftObjectCRC     = 112
	ftFooterCRC     = 116
	ftMagicEnd      = 120
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Footer is what an object's footer says about it.
type Footer struct {
	// DataPos and DataLen locate the data section (DataPos is 0 in
	// version 1).
	DataPos, DataLen int64
	// OffsetIndexPos and OffsetIndexLen locate the offset index,
	// OffsetIndexCRC is its CRC-32C.
	OffsetIndexPos int64
	OffsetIndexLen uint32
	OffsetIndexCRC uint32
	// TimeIndexPos and TimeIndexLen locate the time index, TimeIndexCRC is
	// its CRC-32C.
	TimeIndexPos int64
	TimeIndexLen uint32
	TimeIndexCRC uint32
	// BaseOffset is the first batch's base offset, LastOffset the last
	// batch's last offset.
	BaseOffset, LastOffset int64
	// MinTimestamp is the smallest timestamp a batch header states (its
	// base timestamp, or its max timestamp under LogAppendTime);
	// MaxTimestamp the largest max timestamp. Milliseconds since the epoch.
	MinTimestamp, MaxTimestamp int64
	// RecordCount is the sum of the batches' record counts, BatchCount the
	// number of batches.
	RecordCount int64
	BatchCount  uint32
	// IndexInterval is the writer's index interval in bytes.
	IndexInterval uint32
	// ObjectCRC is the CRC-32C of every byte before the footer.
	ObjectCRC uint32
}

// appendTo encodes f as a footer appended to dst.
func (f *Footer) appendTo(dst []byte) []byte {
	be := binary.BigEndian
	start := len(dst)
	dst = append(dst, Magic...)
	dst = be.AppendUint16(dst, Version)
	dst = be.AppendUint16(dst, 0) // flags
	dst = be.AppendUint32(dst, FooterSize)
	dst = be.AppendUint64(dst, uint64(f.DataPos))
	dst = be.AppendUint64(dst, uint64(f.DataLen))
	dst = be.AppendUint64(dst, uint64(f.OffsetIndexPos))
	dst = be.AppendUint32(dst, f.OffsetIndexLen)
	dst = be.AppendUint32(dst, f.OffsetIndexCRC)
	dst = be.AppendUint64(dst, uint64(f.TimeIndexPos))
	dst = be.AppendUint32(dst, f.TimeIndexLen)
	dst = be.AppendUint32(dst, f.TimeIndexCRC)
	dst = be.AppendUint64(dst, uint64(f.BaseOffset))
	dst = be.AppendUint64(dst, uint64(f.LastOffset))
	dst = be.AppendUint64(dst, uint64(f.MinTimestamp))
	dst = be.AppendUint64(dst, uint64(f.MaxTimestamp))
	dst = be.AppendUint64(dst, uint64(f.RecordCount))
	dst = be.AppendUint32(dst, f.BatchCount)
	dst = be.AppendUint32(dst, f.IndexInterval)
	dst = be.AppendUint32(dst, f.ObjectCRC)
	dst = be.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
	return append(dst, Magic...)
}

// parseFooter decodes and validates the footer b (FooterSize bytes) of an
// object of size bytes: magics, version, checksum, and a layout of data,
// offset index, time index and footer back to back filling the object.
func parseFooter(b []byte, size int64) (Footer, error) {
	be := binary.BigEndian
	if len(b) != FooterSize {
		return Footer{}, fmt.Errorf("%w: footer of %d bytes, want %d", ErrCorrupt, len(b), FooterSize)
	}
	if string(b[ftMagic:ftMagic+8]) != Magic || string(b[ftMagicEnd:]) != Magic {
		return Footer{}, fmt.Errorf("%w: bad magic %q...%q", ErrCorrupt, b[ftMagic:ftMagic+8], b[ftMagicEnd:])
	}
	if got, want := crc32.Checksum(b[:ftFooterCRC], castagnoli), be.Uint32(b[ftFooterCRC:]); got != want {
		return Footer{}, fmt.Errorf("%w: footer CRC stored %#08x, computed %#08x", ErrCorrupt, want, got)
	}
	if v := be.Uint16(b[ftVersion:]); v != Version {
		return Footer{}, fmt.Errorf("%w: version %d, this reader reads %d", ErrVersion, v, Version)
	}
	if fl := be.Uint16(b[ftFlags:]); fl != 0 {
		return Footer{}, fmt.Errorf("%w: unknown flags %#04x", ErrCorrupt, fl)
	}
	if fs := be.Uint32(b[ftFooterSize:]); fs != FooterSize {
		return Footer{}, fmt.Errorf("%w: footer size %d, want %d", ErrCorrupt, fs, FooterSize)
	}
	f := Footer{
		DataPos:        int64(be.Uint64(b[ftDataPos:])),
		DataLen:        int64(be.Uint64(b[ftDataLen:])),
		OffsetIndexPos: int64(be.Uint64(b[ftOffsetIdxPos:])),
		OffsetIndexLen: be.Uint32(b[ftOffsetIdxLen:]),
		OffsetIndexCRC: be.Uint32(b[ftOffsetIdxCRC:]),
		TimeIndexPos:   int64(be.Uint64(b[ftTimeIdxPos:])),
		TimeIndexLen:   be.Uint32(b[ftTimeIdxLen:]),
		TimeIndexCRC:   be.Uint32(b[ftTimeIdxCRC:]),
		BaseOffset:     int64(be.Uint64(b[ftBaseOffset:])),
		LastOffset:     int64(be.Uint64(b[ftLastOffset:])),
		MinTimestamp:   int64(be.Uint64(b[ftMinTimestamp:])),
		MaxTimestamp:   int64(be.Uint64(b[ftMaxTimestamp:])),
		RecordCount:    int64(be.Uint64(b[ftRecordCount:])),
		BatchCount:     be.Uint32(b[ftBatchCount:]),
		IndexInterval:  be.Uint32(b[ftIndexInterval:]),
		ObjectCRC:      be.Uint32(b[ftObjectCRC:]),
	}
	// The sections are back to back: [0, DataLen) data, then the offset
	// index, the time index and the footer, ending at size. Each position is
	// compared with size before it is added to, so nothing overflows.
	switch {
	case f.DataPos != 0:
		return f, fmt.Errorf("%w: data position %d, want 0", ErrCorrupt, f.DataPos)
	case f.DataLen < batchHeaderSize || f.DataLen > size-FooterSize:
		return f, fmt.Errorf("%w: data length %d in an object of %d bytes", ErrCorrupt, f.DataLen, size)
	case f.OffsetIndexPos != f.DataLen:
		return f, fmt.Errorf("%w: offset index at %d, data ends at %d", ErrCorrupt, f.OffsetIndexPos, f.DataLen)
	case f.TimeIndexPos != f.OffsetIndexPos+int64(f.OffsetIndexLen):
		return f, fmt.Errorf("%w: time index at %d, offset index ends at %d", ErrCorrupt, f.TimeIndexPos, f.OffsetIndexPos+int64(f.OffsetIndexLen))
	case f.TimeIndexPos+int64(f.TimeIndexLen) != size-FooterSize:
		return f, fmt.Errorf("%w: time index ends at %d, footer starts at %d", ErrCorrupt, f.TimeIndexPos+int64(f.TimeIndexLen), size-FooterSize)
	case f.OffsetIndexLen == 0 || f.OffsetIndexLen%OffsetEntrySize != 0:
		return f, fmt.Errorf("%w: offset index length %d", ErrCorrupt, f.OffsetIndexLen)
	case f.TimeIndexLen%TimeEntrySize != 0:
		return f, fmt.Errorf("%w: time index length %d", ErrCorrupt, f.TimeIndexLen)
	case int64(f.OffsetIndexLen/OffsetEntrySize) > f.DataLen/batchHeaderSize:
		return f, fmt.Errorf("%w: %d offset index entries for %d data bytes", ErrCorrupt, f.OffsetIndexLen/OffsetEntrySize, f.DataLen)
	case f.TimeIndexLen/TimeEntrySize > f.OffsetIndexLen/OffsetEntrySize:
		return f, fmt.Errorf("%w: more time index entries (%d) than offset index entries", ErrCorrupt, f.TimeIndexLen/TimeEntrySize)
	case f.BaseOffset < 0 || f.LastOffset < f.BaseOffset || f.LastOffset == math.MaxInt64:
		return f, fmt.Errorf("%w: offsets %d..%d", ErrCorrupt, f.BaseOffset, f.LastOffset)
	case f.MinTimestamp > f.MaxTimestamp:
		return f, fmt.Errorf("%w: timestamps %d..%d", ErrCorrupt, f.MinTimestamp, f.MaxTimestamp)
	case f.BatchCount == 0 || int64(f.BatchCount) > f.DataLen/batchHeaderSize:
		return f, fmt.Errorf("%w: %d batches in %d data bytes", ErrCorrupt, f.BatchCount, f.DataLen)
	case f.RecordCount < 0:
		return f, fmt.Errorf("%w: record count %d", ErrCorrupt, f.RecordCount)
	case f.IndexInterval == 0 || f.IndexInterval > MaxIndexInterval:
		return f, fmt.Errorf("%w: index interval %d", ErrCorrupt, f.IndexInterval)
	}
	return f, nil
}

// RangeReader reads byte ranges of one object: the seam to the object
// store (a ranged GET), a local file or a cache.
type RangeReader interface {
	// ReadRange returns the n bytes at off. A result of another length is
	// an error for the caller.
	ReadRange(ctx context.Context, off, n int64) ([]byte, error)
}

// ReaderAt adapts an io.ReaderAt (an *os.File, a *bytes.Reader) to a
// RangeReader.
type ReaderAt struct{ R io.ReaderAt }

// ReadRange reads the n bytes at off with one ReadAt.
func (r ReaderAt) ReadRange(ctx context.Context, off, n int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b := make([]byte, n)
	k, err := r.R.ReadAt(b, off)
	if k == len(b) {
		return b, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return nil, err
}

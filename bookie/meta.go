package bookie

import (
	"encoding/binary"
	"fmt"
)

// Segment metadata value:
//
//	version byte (1) | state byte | epoch u64 | start i64 | next i64 | bytes i64
//
// all big-endian.
const (
	metaVersion = 1
	metaSize    = 2 + 4*8
)

func appendMeta(dst []byte, s SegmentInfo) []byte {
	dst = append(dst, metaVersion, byte(s.State))
	dst = binary.BigEndian.AppendUint64(dst, s.Epoch)
	dst = binary.BigEndian.AppendUint64(dst, uint64(s.StartOffset))
	dst = binary.BigEndian.AppendUint64(dst, uint64(s.NextOffset))
	return binary.BigEndian.AppendUint64(dst, uint64(s.Bytes))
}

// decodeMeta decodes a stored segment metadata value. It rejects values
// that could not have been written: a bad version or state, a next offset
// before the start, negative offsets or sizes.
func decodeMeta(segment uint64, b []byte) (SegmentInfo, error) {
	if len(b) != metaSize || b[0] != metaVersion {
		return SegmentInfo{}, fmt.Errorf("%w: segment %d metadata is %d bytes, version %v", ErrCorrupt, segment, len(b), b[:min(len(b), 1)])
	}
	s := SegmentInfo{
		ID:          segment,
		State:       SegmentState(b[1]),
		Epoch:       binary.BigEndian.Uint64(b[2:]),
		StartOffset: int64(binary.BigEndian.Uint64(b[10:])),
		NextOffset:  int64(binary.BigEndian.Uint64(b[18:])),
		Bytes:       int64(binary.BigEndian.Uint64(b[26:])),
	}
	if (s.State != SegmentOpen && s.State != SegmentSealed) || s.StartOffset < 0 ||
		s.NextOffset < s.StartOffset || s.Bytes < 0 {
		return SegmentInfo{}, fmt.Errorf("%w: segment %d metadata %+v", ErrCorrupt, segment, s)
	}
	return s, nil
}

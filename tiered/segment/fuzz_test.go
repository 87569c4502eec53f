package segment

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/magnetar-mq/magnetar/internal/record"
)

// FuzzOpen opens arbitrary bytes as an object and, if that succeeds, reads
// it all by offset and by time. Nothing may panic, read outside the object
// (countingReader fails the test), or loop; every error is ErrCorrupt.
// With fix set, the footer's and indexes' CRCs are recomputed first, so
// that mutations reach the checks behind them. Objects are kilobytes, so
// keep minimizing short:
//
//	go test -run '^$' -fuzz FuzzOpen -fuzztime 60s -fuzzminimizetime 50x ./tiered/segment/
func FuzzOpen(f *testing.F) {
	f.Add(sampleObject(f), false)
	f.Add(sampleObject(f), true)
	for i, s := range []spec{
		{entries: 20, batchesPerEntry: 3, recordsPerBatch: 2, valueSize: 8, codecs: allCodecs, gap: 2, jitter: 5},
		{entries: 1, batchesPerEntry: 1, recordsPerBatch: 1, codecs: []record.Codec{record.CodecNone}},
	} {
		entries, _ := build(f, s, int64(i)*1000, uint64(i))
		obj, _ := writeObject(f, entries, WriterOptions{IndexInterval: 200})
		f.Add(obj, true)
	}
	f.Fuzz(func(t *testing.T, obj []byte, fix bool) {
		ctx := context.Background()
		if fix {
			obj = fixChecksums(obj)
		}
		r, err := Open(ctx, &countingReader{t: t, b: obj}, int64(len(obj)))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("Open: %v, want ErrCorrupt or ErrVersion", err)
			}
			return
		}
		ft := r.Footer()
		for off, calls := ft.BaseOffset, 0; off <= ft.LastOffset; calls++ {
			if calls > len(obj)/batchHeaderSize {
				t.Fatalf("%d ReadBatches calls for %d bytes of data", calls, ft.DataLen)
			}
			b, next, err := r.ReadBatches(ctx, off, 300)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("ReadBatches(%d): %v, want ErrCorrupt", off, err)
				}
				break
			}
			if len(b) < batchHeaderSize || next <= off {
				t.Fatalf("ReadBatches(%d) = %d bytes, next %d", off, len(b), next)
			}
			off = next
		}
		for _, ms := range []int64{ft.MinTimestamp, ft.MaxTimestamp, ft.MinTimestamp/2 + ft.MaxTimestamp/2} {
			if _, _, err := r.OffsetForTime(ctx, ms); err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("OffsetForTime(%d): %v, want ErrCorrupt", ms, err)
			}
		}
		if err := r.VerifyData(ctx); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("VerifyData: %v, want ErrCorrupt", err)
		}
	})
}

// fixChecksums returns a copy of obj with the CRCs of its indexes (where
// the footer locates them inside obj) and of its footer recomputed.
func fixChecksums(obj []byte) []byte {
	obj = append([]byte(nil), obj...)
	if len(obj) < FooterSize {
		return obj
	}
	be := binary.BigEndian
	ft := obj[len(obj)-FooterSize:]
	size := uint64(len(obj))
	for _, s := range [][3]int{{ftOffsetIdxPos, ftOffsetIdxLen, ftOffsetIdxCRC}, {ftTimeIdxPos, ftTimeIdxLen, ftTimeIdxCRC}} {
		pos, n := be.Uint64(ft[s[0]:]), uint64(be.Uint32(ft[s[1]:]))
		if pos <= size && n <= size-pos {
			be.PutUint32(ft[s[2]:], crc32.Checksum(obj[pos:pos+n], castagnoli))
		}
	}
	be.PutUint32(ft[ftFooterCRC:], crc32.Checksum(ft[:ftFooterCRC], castagnoli))
	return obj
}

package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/magnetar-mq/magnetar/internal/wire"
)

// read is one field read by FuzzReader: which method, and what it returned.
type read struct {
	op    byte
	u     uint64
	i     int64
	b     []byte
	count int
}

const numOps = 7

// apply performs op (mod numOps) on r. Count reads elements of 1 to 8 bytes,
// chosen by the op's high bits.
func apply(r *wire.Reader, op byte) read {
	op %= numOps * 8
	rd := read{op: op}
	switch op % numOps {
	case 0:
		rd.u = uint64(r.Byte())
	case 1:
		rd.u = uint64(r.Uint32())
	case 2:
		rd.u = r.Uint64()
	case 3:
		rd.u = r.Uvarint()
	case 4:
		rd.i = r.Varint()
	case 5:
		rd.b = r.Bytes()
	case 6:
		rd.count = r.Count(countSize(op))
	}
	return rd
}

func countSize(op byte) int { return int(op/numOps) + 1 }

// FuzzReader decodes arbitrary input with an arbitrary sequence of reads
// and checks every read against encoding/binary applied to the same bytes,
// the sticky-error model (after the first error: zero values, no progress,
// the same error), Done's verdict, and that whatever was read re-encodes
// with the Append functions to bytes the same reads decode identically.
func FuzzReader(f *testing.F) {
	m := message{version: 1, crc: 2, segment: 3, term: 300, at: -5, data: []byte("data"), key: "key"}
	f.Add([]byte{0, 1, 2, 3, 4, 5, 5}, m.appendTo(nil))
	f.Add([]byte{3, 3, 3}, bytes.Repeat([]byte{0xff}, 11))
	f.Add([]byte{6, 0}, []byte{2, 9, 9})
	f.Add([]byte{6 + numOps*3, 0, 0, 0, 0, 0, 0, 0, 0}, append([]byte{2}, make([]byte, 8)...))
	f.Add([]byte{5, 5}, []byte{0x7f, 'a'})
	f.Add([]byte{2, 1}, []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, ops, b []byte) {
		r := wire.NewReader(b)
		var reads []read
		var firstErr error
		for _, op := range ops {
			off := r.Offset()
			rd := apply(&r, op)
			if firstErr != nil {
				if r.Err() != firstErr || r.Offset() != off || r.Len() != 0 {
					t.Fatalf("op %d after the error %v: err %v, offset %d -> %d, len %d", op, firstErr, r.Err(), off, r.Offset(), r.Len())
				}
				if rd.u != 0 || rd.i != 0 || rd.b != nil || rd.count != 0 {
					t.Fatalf("op %d after an error returned %+v, want zero values", op, rd)
				}
				continue
			}
			if err := r.Err(); err != nil {
				if !errors.Is(err, wire.ErrMalformed) {
					t.Fatalf("error %v does not wrap ErrMalformed", err)
				}
				firstErr = err
				continue
			}
			checkAgainstBinary(t, b, off, r.Offset(), rd)
			if r.Offset()+r.Len() != len(b) {
				t.Fatalf("Offset %d + Len %d != %d", r.Offset(), r.Len(), len(b))
			}
			reads = append(reads, rd)
		}
		err := r.Done()
		switch {
		case firstErr != nil && err != firstErr:
			t.Fatalf("Done = %v, want the first error %v", err, firstErr)
		case firstErr == nil && (err == nil) != (len(reads) == len(ops) && r.Offset() == len(b)):
			t.Fatalf("Done = %v with %d of %d bytes read", err, r.Offset(), len(b))
		case err != nil && !errors.Is(err, wire.ErrMalformed):
			t.Fatalf("Done's error %v does not wrap ErrMalformed", err)
		}
		reencode(t, reads)
	})
}

// checkAgainstBinary checks a successful read of b from offset off to end.
func checkAgainstBinary(t *testing.T, b []byte, off, end int, rd read) {
	t.Helper()
	in := b[off:]
	size := 0
	switch rd.op % numOps {
	case 0:
		size = 1
		if rd.u != uint64(in[0]) {
			t.Fatalf("Byte = %d, input has %d", rd.u, in[0])
		}
	case 1:
		size = 4
		if want := binary.BigEndian.Uint32(in); rd.u != uint64(want) {
			t.Fatalf("Uint32 = %d, want %d", rd.u, want)
		}
	case 2:
		size = 8
		if want := binary.BigEndian.Uint64(in); rd.u != want {
			t.Fatalf("Uint64 = %d, want %d", rd.u, want)
		}
	case 3:
		want, n := binary.Uvarint(in)
		size = n
		if n <= 0 || rd.u != want {
			t.Fatalf("Uvarint = %d, binary.Uvarint says %d, %d", rd.u, want, n)
		}
	case 4:
		want, n := binary.Varint(in)
		size = n
		if n <= 0 || rd.i != want {
			t.Fatalf("Varint = %d, binary.Varint says %d, %d", rd.i, want, n)
		}
	case 5:
		l, n := binary.Uvarint(in)
		if n <= 0 || l > uint64(len(in)-n) {
			t.Fatalf("Bytes succeeded where binary.Uvarint says length %d, %d of %d bytes", l, n, len(in))
		}
		size = n + int(l)
		if !bytes.Equal(rd.b, in[n:size]) || cap(rd.b) != len(rd.b) || rd.b == nil {
			t.Fatalf("Bytes = %q (cap %d), want %q with cap clipped", rd.b, cap(rd.b), in[n:size])
		}
		if len(rd.b) > 0 && &rd.b[0] != &in[n] {
			t.Fatal("Bytes copied the input")
		}
	case 6:
		c, n := binary.Uvarint(in)
		size = n
		if n <= 0 || uint64(rd.count) != c || c*uint64(countSize(rd.op)) > uint64(len(in)-n) {
			t.Fatalf("Count(%d) = %d with %d bytes left; binary.Uvarint says %d, %d", countSize(rd.op), rd.count, len(in)-n, c, n)
		}
	}
	if end-off != size {
		t.Fatalf("op %d consumed %d bytes, want %d", rd.op, end-off, size)
	}
}

// reencode appends every read value with the matching Append function and
// reads the result back with the same ops: the values must match and the
// input must be consumed exactly.
func reencode(t *testing.T, reads []read) {
	t.Helper()
	var enc []byte
	for _, rd := range reads {
		switch rd.op % numOps {
		case 0:
			enc = append(enc, byte(rd.u))
		case 1:
			enc = wire.AppendUint32(enc, uint32(rd.u))
		case 2:
			enc = wire.AppendUint64(enc, rd.u)
		case 3:
			enc = wire.AppendUvarint(enc, rd.u)
		case 4:
			enc = wire.AppendVarint(enc, rd.i)
		case 5:
			enc = wire.AppendBytes(enc, rd.b)
		case 6:
			// A count is a uvarint; re-read it as one below, since the
			// elements it counted were not necessarily read.
			enc = wire.AppendUvarint(enc, uint64(rd.count))
		}
	}
	r := wire.NewReader(enc)
	for _, rd := range reads {
		op := rd.op
		if op%numOps == 6 {
			op = 3
		}
		got := apply(&r, op)
		if rd.op%numOps == 6 {
			got.u, got.count = 0, int(got.u)
		}
		if got.u != rd.u || got.i != rd.i || !bytes.Equal(got.b, rd.b) || got.count != rd.count {
			t.Fatalf("re-encoded op %d reads %+v, want %+v", rd.op, got, rd)
		}
	}
	if err := r.Done(); err != nil {
		t.Fatalf("re-encoded reads: %v", err)
	}
}

package wire_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/magnetar-mq/magnetar/internal/wire"
)

// message is one of every field type, as a decoder would lay them out.
type message struct {
	version byte
	crc     uint32
	segment uint64
	term    uint64
	at      int64
	data    []byte
	key     string
}

func (m *message) appendTo(dst []byte) []byte {
	dst = append(dst, m.version)
	dst = wire.AppendUint32(dst, m.crc)
	dst = wire.AppendUint64(dst, m.segment)
	dst = wire.AppendUvarint(dst, m.term)
	dst = wire.AppendVarint(dst, m.at)
	dst = wire.AppendBytes(dst, m.data)
	return wire.AppendString(dst, m.key)
}

func decodeMessage(b []byte) (message, error) {
	r := wire.NewReader(b)
	m := message{
		version: r.Byte(),
		crc:     r.Uint32(),
		segment: r.Uint64(),
		term:    r.Uvarint(),
		at:      r.Varint(),
		data:    r.Bytes(),
		key:     string(r.Bytes()),
	}
	if err := r.Done(); err != nil {
		return message{}, err
	}
	return m, nil
}

func TestReaderRoundTripsEveryFieldType(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		m    message
	}{
		{"zero values", message{data: []byte{}}},
		{"small values", message{version: 1, crc: 2, segment: 3, term: 4, at: -5, data: []byte("d"), key: "k"}},
		{"the largest values", message{version: math.MaxUint8, crc: math.MaxUint32, segment: math.MaxUint64, term: math.MaxUint64, at: math.MaxInt64, data: bytes.Repeat([]byte{0xab}, 1000), key: strings.Repeat("k", 300)}},
		{"the most negative varint", message{at: math.MinInt64, data: []byte{}}},
		{"varints at the one-byte boundaries", message{term: 128, at: -65, data: make([]byte, 127), key: strings.Repeat("x", 128)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeMessage(tc.m.appendTo(nil))
			if err != nil {
				t.Fatal(err)
			}
			if got.version != tc.m.version || got.crc != tc.m.crc || got.segment != tc.m.segment || got.term != tc.m.term ||
				got.at != tc.m.at || !bytes.Equal(got.data, tc.m.data) || got.key != tc.m.key {
				t.Fatalf("decoded %+v, want %+v", got, tc.m)
			}
		})
	}
}

// TestEveryTruncationFails cuts a valid message at every length: each
// prefix must fail with ErrMalformed, and no prefix may panic.
func TestEveryTruncationFails(t *testing.T) {
	t.Parallel()
	m := message{version: 1, crc: 2, segment: 3, term: 1 << 40, at: -1 << 40, data: []byte("data"), key: "key"}
	b := m.appendTo(nil)
	for n := range len(b) {
		if _, err := decodeMessage(b[:n]); !errors.Is(err, wire.ErrMalformed) {
			t.Fatalf("message cut to %d of %d bytes: err = %v, want ErrMalformed", n, len(b), err)
		}
	}
}

// TestReaderRejectsMalformedInput lists every way a single read can fail,
// with the reason and offset its error reports.
func TestReaderRejectsMalformedInput(t *testing.T) {
	t.Parallel()
	overlong := bytes.Repeat([]byte{0xff}, 11)
	for _, tc := range []struct {
		name string
		b    []byte
		read func(*wire.Reader)
		want string
	}{
		{"a byte from empty input", nil, func(r *wire.Reader) { r.Byte() }, "truncated at byte 0 of 0"},
		{"a uint32 from 3 bytes", []byte{1, 2, 3}, func(r *wire.Reader) { r.Uint32() }, "truncated at byte 0 of 3"},
		{"a uint64 from 7 bytes", make([]byte, 7), func(r *wire.Reader) { r.Uint64() }, "truncated at byte 0 of 7"},
		{"a uint64 after a byte from 8 bytes", make([]byte, 8), func(r *wire.Reader) { r.Byte(); r.Uint64() }, "truncated at byte 1 of 8"},
		{"a uvarint from empty input", nil, func(r *wire.Reader) { r.Uvarint() }, "truncated varint at byte 0 of 0"},
		{"a uvarint whose last byte is missing", []byte{0x80}, func(r *wire.Reader) { r.Uvarint() }, "truncated varint at byte 0 of 1"},
		{"a uvarint longer than 64 bits", overlong, func(r *wire.Reader) { r.Uvarint() }, "varint overflows 64 bits at byte 0 of 11"},
		{"a uvarint whose tenth byte overflows", append(bytes.Repeat([]byte{0xff}, 9), 0x02), func(r *wire.Reader) { r.Uvarint() }, "varint overflows 64 bits"},
		{"a varint whose last byte is missing", []byte{0, 0x80}, func(r *wire.Reader) { r.Byte(); r.Varint() }, "truncated varint at byte 1 of 2"},
		{"a varint longer than 64 bits", overlong, func(r *wire.Reader) { r.Varint() }, "varint overflows 64 bits at byte 0 of 11"},
		{"bytes without a length", nil, func(r *wire.Reader) { r.Bytes() }, "truncated varint at byte 0 of 0"},
		{"bytes whose length runs past the end", []byte{3, 'a', 'b'}, func(r *wire.Reader) { r.Bytes() }, "length past the end at byte 1 of 3"},
		{"bytes with a length of 2^64-1", wire.AppendUvarint(nil, math.MaxUint64), func(r *wire.Reader) { r.Bytes() }, "length past the end at byte 10 of 10"},
		{"a count of 1-byte elements past the end", []byte{3, 0, 0}, func(r *wire.Reader) { r.Count(1) }, "count past the end at byte 1 of 3"},
		{"a count of 4-byte elements past the end", []byte{2, 0, 0, 0, 0, 0, 0, 0}, func(r *wire.Reader) { r.Count(4) }, "count past the end"},
		{"a count of 2^64-1", wire.AppendUvarint(nil, math.MaxUint64), func(r *wire.Reader) { r.Count(1) }, "count past the end"},
		{"a count whose varint is truncated", []byte{0x80}, func(r *wire.Reader) { r.Count(1) }, "truncated varint"},
		{"a byte left over", []byte{1, 2}, func(r *wire.Reader) { r.Byte() }, "trailing bytes at byte 1 of 2"},
		{"a caller's own check", []byte{9}, func(r *wire.Reader) { r.Byte(); r.Fail("unknown type") }, "unknown type at byte 1 of 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := wire.NewReader(tc.b)
			tc.read(&r)
			err := r.Done()
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %q, want it to say %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), wire.ErrMalformed.Error()+": ") {
				t.Fatalf("err = %q does not start with %q", err, wire.ErrMalformed)
			}
		})
	}
}

// TestFirstErrorSticks checks the model callers rely on: after the first
// failure every read returns a zero value and consumes nothing, and later
// failures do not replace the first error.
func TestFirstErrorSticks(t *testing.T) {
	t.Parallel()
	// An overlong varint, then valid fields that must not be read.
	b := wire.AppendBytes(wire.AppendUint64(bytes.Repeat([]byte{0xff}, 11), 1), []byte("abc"))
	r := wire.NewReader(b)
	if v := r.Uvarint(); v != 0 {
		t.Fatalf("failed Uvarint = %d, want 0", v)
	}
	first := r.Err()
	if first == nil {
		t.Fatal("an overlong varint did not fail")
	}
	off := r.Offset()
	if r.Byte() != 0 || r.Uint32() != 0 || r.Uint64() != 0 || r.Uvarint() != 0 || r.Varint() != 0 || r.Bytes() != nil || r.Count(1) != 0 {
		t.Fatal("a read after an error returned a non-zero value")
	}
	r.Fail("a later failure")
	if r.Offset() != off {
		t.Fatalf("reads after an error moved the offset from %d to %d", off, r.Offset())
	}
	if r.Len() != 0 {
		t.Fatalf("Len after an error = %d, want 0", r.Len())
	}
	if r.Err() != first || r.Done() != first {
		t.Fatalf("error changed from %v to %v / %v", first, r.Err(), r.Done())
	}
}

func TestDoneRequiresTheWholeInput(t *testing.T) {
	t.Parallel()
	b := append(wire.AppendUvarint(nil, 5), 1, 2)
	r := wire.NewReader(b)
	r.Uvarint()
	if r.Err() != nil {
		t.Fatalf("Err = %v before Done with bytes left, want nil: Err does not check for trailing bytes", r.Err())
	}
	if r.Len() != 2 {
		t.Fatalf("Len = %d, want 2", r.Len())
	}
	if err := r.Done(); !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("Done with 2 bytes left = %v, want ErrMalformed", err)
	}
	if r.Byte() != 0 {
		t.Fatal("Done's trailing-bytes error did not stop later reads")
	}

	r = wire.NewReader(b)
	r.Uvarint()
	r.Byte()
	r.Byte()
	if err := r.Done(); err != nil {
		t.Fatalf("Done after reading everything = %v, want nil", err)
	}
	if err := r.Done(); err != nil {
		t.Fatalf("a second Done = %v, want nil", err)
	}
}

func TestZeroReaderIsEmptyInput(t *testing.T) {
	t.Parallel()
	var r wire.Reader
	if err := r.Done(); err != nil {
		t.Fatalf("Done on the zero Reader = %v, want nil", err)
	}
	if r.Len() != 0 || r.Offset() != 0 {
		t.Fatalf("zero Reader Len, Offset = %d, %d", r.Len(), r.Offset())
	}
	if r.Byte(); !errors.Is(r.Err(), wire.ErrMalformed) {
		t.Fatalf("Byte on the zero Reader: err = %v, want ErrMalformed", r.Err())
	}
}

func TestOffsetAndLenTrackEveryRead(t *testing.T) {
	t.Parallel()
	m := message{version: 1, term: 300, at: -1, data: []byte("abcd"), key: "k"}
	b := m.appendTo(nil)
	r := wire.NewReader(b)
	for _, step := range []struct {
		name string
		read func()
		size int
	}{
		{"Byte", func() { r.Byte() }, 1},
		{"Uint32", func() { r.Uint32() }, 4},
		{"Uint64", func() { r.Uint64() }, 8},
		{"Uvarint of 300", func() { r.Uvarint() }, 2},
		{"Varint of -1", func() { r.Varint() }, 1},
		{"Bytes of 4", func() { r.Bytes() }, 5},
		{"Bytes of 1", func() { r.Bytes() }, 2},
	} {
		before := r.Offset()
		step.read()
		if got := r.Offset() - before; got != step.size {
			t.Fatalf("%s consumed %d bytes, want %d", step.name, got, step.size)
		}
		if r.Offset()+r.Len() != len(b) {
			t.Fatalf("after %s Offset %d + Len %d != %d", step.name, r.Offset(), r.Len(), len(b))
		}
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
}

// TestBytesAliasesTheInputButCannotOverwriteIt checks the two promises of
// Bytes: no copy, and an append to the result reallocates rather than
// writing over the next field.
func TestBytesAliasesTheInputButCannotOverwriteIt(t *testing.T) {
	t.Parallel()
	b := wire.AppendBytes(wire.AppendBytes(nil, []byte("ab")), []byte("cd"))
	r := wire.NewReader(b)
	first := r.Bytes()
	if &first[0] != &b[1] {
		t.Fatal("Bytes copied the input")
	}
	if cap(first) != len(first) {
		t.Fatalf("cap = %d, want it clipped to len %d", cap(first), len(first))
	}
	_ = append(first, 'X')
	if second := r.Bytes(); string(second) != "cd" {
		t.Fatalf("appending to the first field changed the second to %q", second)
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
}

func TestEmptyBytesAreNonNil(t *testing.T) {
	t.Parallel()
	r := wire.NewReader(wire.AppendBytes(nil, nil))
	if got := r.Bytes(); got == nil || len(got) != 0 {
		t.Fatalf("empty field = %#v, want a non-nil empty slice", got)
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
}

func TestCountAcceptsExactlyWhatFits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		count   uint64
		left    int
		minSize int
		ok      bool
	}{
		{"no elements in no bytes", 0, 0, 4, true},
		{"three 1-byte elements in three bytes", 3, 3, 1, true},
		{"four 1-byte elements in three bytes", 4, 3, 1, false},
		{"two 5-byte elements in ten bytes", 2, 10, 5, true},
		{"two 5-byte elements in nine bytes", 2, 9, 5, false},
		{"two 5-byte elements in fourteen bytes", 2, 14, 5, true},
		{"three 5-byte elements in fourteen bytes", 3, 14, 5, false},
		{"a minSize of 0 counts as 1", 3, 3, 0, true},
		{"a minSize of 0 still bounds the count", 4, 3, 0, false},
		{"a negative minSize counts as 1", 4, 3, -8, false},
		{"a count that overflows count*minSize", math.MaxUint64 / 2, 100, 4, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := append(wire.AppendUvarint(nil, tc.count), make([]byte, tc.left)...)
			r := wire.NewReader(b)
			n := r.Count(tc.minSize)
			if tc.ok {
				if r.Err() != nil || uint64(n) != tc.count {
					t.Fatalf("Count = %d, %v; want %d", n, r.Err(), tc.count)
				}
				if r.Len() != tc.left {
					t.Fatalf("Count consumed more than its varint: Len = %d, want %d", r.Len(), tc.left)
				}
				return
			}
			if n != 0 || !errors.Is(r.Err(), wire.ErrMalformed) {
				t.Fatalf("Count = %d, %v; want 0, ErrMalformed", n, r.Err())
			}
		})
	}
}

// TestCallersWrapTheError shows the intended use: a package wraps the
// Reader's error in its own sentinel, and both stay testable.
func TestCallersWrapTheError(t *testing.T) {
	t.Parallel()
	errCorrupt := errors.New("pkg: corrupt record")
	r := wire.NewReader([]byte{1})
	r.Uint64()
	err := fmt.Errorf("%w: %w", errCorrupt, r.Done())
	if !errors.Is(err, errCorrupt) || !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("%v does not wrap both errors", err)
	}
	if want := "pkg: corrupt record: wire: malformed input: truncated at byte 0 of 1"; err.Error() != want {
		t.Fatalf("err = %q, want %q", err, want)
	}
}

// TestDecodingDoesNotAllocate checks the hot-path promise: a Reader lives
// on the stack and reading valid input allocates nothing.
func TestDecodingDoesNotAllocate(t *testing.T) {
	m := message{version: 1, crc: 2, segment: 3, term: 4, at: -5, data: []byte("data"), key: "k"}
	b := m.appendTo(nil)
	var sink uint64
	allocs := testing.AllocsPerRun(100, func() {
		r := wire.NewReader(b)
		sink += uint64(r.Byte()) + uint64(r.Uint32()) + r.Uint64() + r.Uvarint() + uint64(r.Varint())
		sink += uint64(len(r.Bytes())) + uint64(len(r.Bytes()))
		if r.Done() != nil {
			panic("valid input failed")
		}
	})
	if allocs != 0 {
		t.Fatalf("decoding valid input allocated %v times", allocs)
	}
	_ = sink
}

// TestNonCanonicalVarintsAreAccepted pins a compatibility choice: like
// encoding/binary (and the decoders this package replaced), a Reader
// accepts a varint padded with 0x80 groups, so the bytes a decoder accepts
// did not change. Round trips compare values, not bytes, for this reason.
func TestNonCanonicalVarintsAreAccepted(t *testing.T) {
	t.Parallel()
	r := wire.NewReader([]byte{0x81, 0x80, 0x00, 0x80, 0x00})
	if v := r.Uvarint(); v != 1 {
		t.Fatalf("Uvarint of 81 80 00 = %d, want 1", v)
	}
	if v := r.Varint(); v != 0 {
		t.Fatalf("Varint of 80 00 = %d, want 0", v)
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
}

package wire_test

import (
	"bytes"
	"math"
	"testing"

	"github.com/magnetar-mq/magnetar/internal/wire"
)

// TestAppendersWriteTheDocumentedBytes pins the encodings byte for byte:
// they are stored on disk and in Raft logs, so they must never change.
func TestAppendersWriteTheDocumentedBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		got  []byte
		want []byte
	}{
		{"uvarint 0 is one zero byte", wire.AppendUvarint(nil, 0), []byte{0x00}},
		{"uvarint 127 is the largest one-byte uvarint", wire.AppendUvarint(nil, 127), []byte{0x7f}},
		{"uvarint 128 takes two bytes, low group first", wire.AppendUvarint(nil, 128), []byte{0x80, 0x01}},
		{"uvarint 300", wire.AppendUvarint(nil, 300), []byte{0xac, 0x02}},
		{"uvarint max takes ten bytes", wire.AppendUvarint(nil, math.MaxUint64), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"varint 0 zigzags to 0", wire.AppendVarint(nil, 0), []byte{0x00}},
		{"varint -1 zigzags to 1", wire.AppendVarint(nil, -1), []byte{0x01}},
		{"varint 1 zigzags to 2", wire.AppendVarint(nil, 1), []byte{0x02}},
		{"varint -64 is the smallest one-byte varint", wire.AppendVarint(nil, -64), []byte{0x7f}},
		{"varint 64 takes two bytes", wire.AppendVarint(nil, 64), []byte{0x80, 0x01}},
		{"varint min takes ten bytes", wire.AppendVarint(nil, math.MinInt64), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"uint32 is big-endian", wire.AppendUint32(nil, 0x01020304), []byte{1, 2, 3, 4}},
		{"uint64 is big-endian", wire.AppendUint64(nil, 0x0102030405060708), []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{"nil bytes are a zero length", wire.AppendBytes(nil, nil), []byte{0}},
		{"empty bytes are a zero length", wire.AppendBytes(nil, []byte{}), []byte{0}},
		{"bytes are a uvarint length then the bytes", wire.AppendBytes(nil, []byte("ab")), []byte{2, 'a', 'b'}},
		{"a 128-byte field has a two-byte length", wire.AppendBytes(nil, make([]byte, 128))[:3], []byte{0x80, 0x01, 0}},
		{"a string encodes like its bytes", wire.AppendString(nil, "ab"), []byte{2, 'a', 'b'}},
		{"an empty string is a zero length", wire.AppendString(nil, ""), []byte{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Equal(tc.got, tc.want) {
				t.Fatalf("got % x, want % x", tc.got, tc.want)
			}
		})
	}
}

// TestAppendersExtendDst checks that every appender keeps what dst held and
// writes after it, so messages can be built into one reused buffer.
func TestAppendersExtendDst(t *testing.T) {
	t.Parallel()
	prefix := []byte("prefix")
	for name, appendTo := range map[string]func([]byte) []byte{
		"AppendUvarint": func(b []byte) []byte { return wire.AppendUvarint(b, 300) },
		"AppendVarint":  func(b []byte) []byte { return wire.AppendVarint(b, -300) },
		"AppendUint32":  func(b []byte) []byte { return wire.AppendUint32(b, 7) },
		"AppendUint64":  func(b []byte) []byte { return wire.AppendUint64(b, 7) },
		"AppendBytes":   func(b []byte) []byte { return wire.AppendBytes(b, []byte("xyz")) },
		"AppendString":  func(b []byte) []byte { return wire.AppendString(b, "xyz") },
	} {
		t.Run(name, func(t *testing.T) {
			alone := appendTo(nil)
			got := appendTo(bytes.Clone(prefix))
			if !bytes.Equal(got, append(bytes.Clone(prefix), alone...)) {
				t.Fatalf("appending to %q gave % x, want the prefix then % x", prefix, got, alone)
			}
		})
	}
}

// TestMaxVarintLenBoundsEveryVarint checks the constant callers size
// buffers with.
func TestMaxVarintLenBoundsEveryVarint(t *testing.T) {
	t.Parallel()
	if n := len(wire.AppendUvarint(nil, math.MaxUint64)); n != wire.MaxVarintLen {
		t.Fatalf("largest uvarint is %d bytes, MaxVarintLen is %d", n, wire.MaxVarintLen)
	}
	if n := len(wire.AppendVarint(nil, math.MinInt64)); n != wire.MaxVarintLen {
		t.Fatalf("largest varint is %d bytes, MaxVarintLen is %d", n, wire.MaxVarintLen)
	}
}

// TestAppendersDoNotAllocateWithRoom checks the hot-path promise: with
// capacity in dst, encoding allocates nothing.
func TestAppendersDoNotAllocateWithRoom(t *testing.T) {
	buf := make([]byte, 0, 256)
	data := []byte("payload")
	allocs := testing.AllocsPerRun(100, func() {
		b := append(buf[:0], 1)
		b = wire.AppendUvarint(b, 1<<40)
		b = wire.AppendVarint(b, -1<<40)
		b = wire.AppendUint32(b, 1)
		b = wire.AppendUint64(b, 1)
		b = wire.AppendBytes(b, data)
		b = wire.AppendString(b, "key")
		buf = b
	})
	if allocs != 0 {
		t.Fatalf("encoding into a buffer with room allocated %v times", allocs)
	}
}

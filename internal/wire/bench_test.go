package wire_test

import "testing"

// BenchmarkAppendMessage measures encoding one message of every field type
// into a reused buffer.
func BenchmarkAppendMessage(b *testing.B) {
	m := message{version: 1, crc: 2, segment: 3, term: 1 << 20, at: -1 << 20, data: make([]byte, 1024), key: "tenant/ns/topic"}
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		buf = m.appendTo(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkDecodeMessage measures decoding the same message with a Reader.
// Bytes aliases the input, so the payload size barely matters; the one
// allocation is decodeMessage's string(key), not the Reader's.
func BenchmarkDecodeMessage(b *testing.B) {
	m := message{version: 1, crc: 2, segment: 3, term: 1 << 20, at: -1 << 20, data: make([]byte, 1024), key: "tenant/ns/topic"}
	enc := m.appendTo(nil)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeMessage(enc); err != nil {
			b.Fatal(err)
		}
	}
}

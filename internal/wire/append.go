package wire

import "encoding/binary"

// MaxVarintLen is the most bytes a Uvarint or Varint encoding takes; use it
// to size a buffer before appending.
const MaxVarintLen = binary.MaxVarintLen64

// AppendUvarint appends v as an unsigned LEB128 varint (1 to 10 bytes).
func AppendUvarint(dst []byte, v uint64) []byte { return binary.AppendUvarint(dst, v) }

// AppendVarint appends v as a zigzag-encoded signed varint (1 to 10 bytes),
// so small negative numbers stay short.
func AppendVarint(dst []byte, v int64) []byte { return binary.AppendVarint(dst, v) }

// AppendUint32 appends v as 4 big-endian bytes.
func AppendUint32(dst []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(dst, v) }

// AppendUint64 appends v as 8 big-endian bytes.
func AppendUint64(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }

// AppendBytes appends the length of b as a Uvarint, then b. A nil and an
// empty b encode the same.
func AppendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// AppendString appends s like AppendBytes; Reader.Bytes reads it back.
func AppendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

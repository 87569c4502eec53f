// Package wire holds the binary primitives that Magnetar's own on-disk and
// Raft-log formats are built from: the metadata service's commands and
// stored records, the Raft log records of internal/raftstore and the
// commands of a bookie shard. It owns no format; each of those packages
// documents its own layout and composes it from these pieces.
//
// # Encoding
//
// Encoders append to a caller-owned slice and return the extended slice, in
// the style of strconv.AppendInt and encoding/binary.AppendUvarint, so a
// caller on a hot path can reuse one buffer for many messages:
//
//	dst = append(dst, version)
//	dst = wire.AppendUvarint(dst, term)
//	dst = wire.AppendVarint(dst, unixNanos)
//	dst = wire.AppendUint64(dst, segment) // 8 bytes, big-endian
//	dst = wire.AppendBytes(dst, data)     // uvarint length, then the bytes
//
// The primitives are: a byte (plain append), big-endian Uint32 and Uint64,
// Uvarint and Varint (encoding/binary's LEB128 and zigzag forms), and
// length-prefixed Bytes and strings (a Uvarint length, then that many
// bytes). Nothing here allocates except by growing dst.
//
// # Decoding
//
// A Reader is a cursor over one encoded message whose error is checked once:
//
//	r := wire.NewReader(b)
//	v := r.Byte()
//	term := r.Uvarint()
//	data := r.Bytes()
//	if err := r.Done(); err != nil {
//		return fmt.Errorf("%w: %w", ErrCorrupt, err)
//	}
//
// The first failure (input that ends early, a varint longer than 64 bits, a
// length past the end of the input, or a caller's own check reported with
// Fail) is recorded, and every read after it returns a zero value and
// consumes nothing, so a decoder reads all its fields straight through and
// looks at the error at the end. Done also fails if bytes are left over: a
// message must be consumed exactly. Code that must look at a field before
// reading on (a version byte, an op code that selects the fields that
// follow) checks Err first, since a zero value is also what a failed read
// returns.
//
// Bytes returns a slice of the input, not a copy, with its capacity clipped
// so that appending to it cannot overwrite the input; copy what outlives the
// input. Count reads an element count and checks it against the bytes left,
// so that a decoder can size a slice from it without letting a corrupt count
// allocate gigabytes. A Reader does not allocate except to build its error.
//
// # Errors
//
// Every error a Reader reports wraps ErrMalformed and says what was wrong and
// at which byte offset. Callers wrap it in their own package's sentinel
// (metadata.ErrCorrupt, raftstore.ErrCorrupt, ...) with %w, so their callers
// keep testing errors.Is against the error they always have.
//
// Decoders built on a Reader must be fuzzed (see FuzzReader here, and the
// FuzzDecode targets of the packages that use it): any input gives a value
// or an error, never a panic or an out-of-range allocation.
package wire

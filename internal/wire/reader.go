package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every error a Reader reports. Callers wrap it in
// turn in their own package's error, e.g.
//
//	fmt.Errorf("%w: %w", ErrCorrupt, err)
var ErrMalformed = errors.New("wire: malformed input")

// Reader decodes one message from a byte slice. The first failure is
// recorded; after it every read returns a zero value and consumes nothing,
// so a decoder reads its fields straight through and checks the error once,
// with Done (or Err, when it must branch on a field first).
//
// A Reader is a small value meant to live on the stack of one decoding
// function; it is not safe for concurrent use. The zero Reader reads an
// empty input.
type Reader struct {
	b   []byte
	off int // bytes consumed; b[off:] is unread
	err error
}

// NewReader returns a Reader positioned at the start of b. The Reader does
// not copy b: slices returned by Bytes alias it.
func NewReader(b []byte) Reader { return Reader{b: b} }

// Err returns the first error recorded, or nil. It does not check for
// unread bytes; Done does.
func (r *Reader) Err() error { return r.err }

// Len returns the number of unread bytes; 0 after an error.
func (r *Reader) Len() int { return len(r.b) - r.off }

// Offset returns the number of bytes consumed so far. After an error it
// stays where the error was found.
func (r *Reader) Offset() int { return r.off }

// Done returns the first error recorded or, if there was none but bytes are
// left unread, records and returns an error for them. A decoder calls it
// once, after its last field.
func (r *Reader) Done() error {
	if r.off != len(r.b) {
		r.fail("trailing bytes")
	}
	return r.err
}

// Fail records a failure found by the caller (a field out of range, an
// unknown type) unless an error is already recorded. Reads after it return
// zero values, and Err and Done return an error wrapping ErrMalformed that
// says reason and the current offset.
func (r *Reader) Fail(reason string) { r.fail(reason) }

// fail records the first error and makes every later read see no input:
// once b is cut at off, every read fails its length check (and fail does
// nothing), so the reads need no separate test of err. It only stores a
// *malformedError, whose text is built when asked for, so that it stays
// cheap enough for the read methods to be inlined.
func (r *Reader) fail(what string) {
	if r.err == nil {
		r.err = &malformedError{what: what, off: r.off, size: len(r.b)}
		r.b = r.b[:r.off]
	}
}

// malformedError is the error a Reader records.
type malformedError struct {
	what      string
	off, size int
}

func (e *malformedError) Error() string {
	return fmt.Sprintf("%v: %s at byte %d of %d", ErrMalformed, e.what, e.off, e.size)
}

func (e *malformedError) Unwrap() error { return ErrMalformed }

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if r.off >= len(r.b) {
		r.fail("truncated")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

// Uint32 reads 4 big-endian bytes.
func (r *Reader) Uint32() uint32 {
	if len(r.b)-r.off < 4 {
		r.fail("truncated")
		return 0
	}
	v := binary.BigEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v
}

// Uint64 reads 8 big-endian bytes.
func (r *Reader) Uint64() uint64 {
	if len(r.b)-r.off < 8 {
		r.fail("truncated")
		return 0
	}
	v := binary.BigEndian.Uint64(r.b[r.off:])
	r.off += 8
	return v
}

// Uvarint reads an unsigned varint written by AppendUvarint.
func (r *Reader) Uvarint() uint64 {
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.badVarint(n)
		return 0
	}
	r.off += n
	return v
}

// Varint reads a signed varint written by AppendVarint.
func (r *Reader) Varint() int64 {
	v, n := binary.Varint(r.b[r.off:])
	if n <= 0 {
		r.badVarint(n)
		return 0
	}
	r.off += n
	return v
}

// badVarint records the failure that binary.Uvarint or binary.Varint
// reported with n <= 0: 0 for input that ends inside the varint, < 0 for
// one longer than 64 bits.
func (r *Reader) badVarint(n int) {
	if n == 0 {
		r.fail("truncated varint")
	} else {
		r.fail("varint overflows 64 bits")
	}
}

// Bytes reads a Uvarint length and that many bytes, written by AppendBytes
// or AppendString. The result aliases the input (copy what you keep), is
// non-nil even when empty, and has its capacity clipped to its length so
// appending to it never writes over the input. It returns nil after an
// error.
func (r *Reader) Bytes() []byte {
	n := r.Uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)-r.off) {
		r.fail("length past the end")
		return nil
	}
	end := r.off + int(n)
	s := r.b[r.off:end:end]
	r.off = end
	return s
}

// Count reads a Uvarint element count and checks that that many elements of
// at least minSize bytes each fit in the unread input (a minSize below 1
// counts as 1). A decoder can therefore size a slice from the count before
// reading the elements without a corrupt count making it allocate more than
// the input could hold. It returns 0 after an error.
func (r *Reader) Count(minSize int) int {
	n := r.Uvarint()
	if r.err != nil {
		return 0
	}
	if n > uint64((len(r.b)-r.off)/max(minSize, 1)) {
		r.fail("count past the end")
		return 0
	}
	return int(n)
}

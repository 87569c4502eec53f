package bookie

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A command is one Raft log entry of a shard:
//
//	version byte (1) | op byte | segment u64 | op fields
//	create: start i64 | epoch u64
//	append: epoch u64 | count uvarint | count x (length uvarint | entry bytes)
//	seal:   epoch u64 | start i64
//	delete: (nothing)
//
// Fixed-width fields are big-endian.

const commandVersion = 1

type op byte

const (
	opCreate op = 1
	opAppend op = 2
	opSeal   op = 3
	opDelete op = 4
)

func (o op) String() string {
	switch o {
	case opCreate:
		return "create"
	case opAppend:
		return "append"
	case opSeal:
		return "seal"
	case opDelete:
		return "delete"
	default:
		return fmt.Sprintf("op(%d)", byte(o))
	}
}

// command is a decoded command. Entries alias the encoded bytes.
type command struct {
	op      op
	segment uint64
	epoch   uint64
	start   int64
	entries [][]byte
}

// errBadCommand means a Raft log entry is not a valid command.
var errBadCommand = errors.New("bookie: malformed command")

// appendCommand encodes c by appending it to dst.
func appendCommand(dst []byte, c command) []byte {
	dst = append(dst, commandVersion, byte(c.op))
	dst = binary.BigEndian.AppendUint64(dst, c.segment)
	switch c.op {
	case opCreate:
		dst = binary.BigEndian.AppendUint64(dst, uint64(c.start))
		dst = binary.BigEndian.AppendUint64(dst, c.epoch)
	case opAppend:
		dst = binary.BigEndian.AppendUint64(dst, c.epoch)
		dst = binary.AppendUvarint(dst, uint64(len(c.entries)))
		for _, e := range c.entries {
			dst = binary.AppendUvarint(dst, uint64(len(e)))
			dst = append(dst, e...)
		}
	case opSeal:
		dst = binary.BigEndian.AppendUint64(dst, c.epoch)
		dst = binary.BigEndian.AppendUint64(dst, uint64(c.start))
	}
	return dst
}

// commandSize is the encoded size of an append command.
func appendCommandSize(entries [][]byte) int {
	n := 2 + 8 + 8 + binary.MaxVarintLen64
	for _, e := range entries {
		n += binary.MaxVarintLen64 + len(e)
	}
	return n
}

// decodeCommand decodes a command; entries alias b.
func decodeCommand(b []byte) (command, error) {
	r := cursor{b: b}
	if v := r.byte(); r.err == nil && v != commandVersion {
		return command{}, fmt.Errorf("%w: version %d", errBadCommand, v)
	}
	c := command{op: op(r.byte()), segment: r.u64()}
	switch c.op {
	case opCreate:
		c.start = int64(r.u64())
		c.epoch = r.u64()
	case opAppend:
		c.epoch = r.u64()
		n := r.uvarint()
		if r.err == nil && n > uint64(len(b)-r.off) {
			r.fail()
		}
		if r.err == nil && n > 0 {
			c.entries = make([][]byte, 0, n)
		}
		for i := uint64(0); i < n && r.err == nil; i++ {
			c.entries = append(c.entries, r.bytes())
		}
	case opSeal:
		c.epoch = r.u64()
		c.start = int64(r.u64())
	case opDelete:
	default:
		if r.err == nil {
			return command{}, fmt.Errorf("%w: unknown op %d", errBadCommand, byte(c.op))
		}
	}
	if r.err == nil && r.off != len(b) {
		return command{}, fmt.Errorf("%w: %d trailing bytes after %s", errBadCommand, len(b)-r.off, c.op)
	}
	if r.err != nil {
		return command{}, r.err
	}
	return c, nil
}

// cursor decodes fixed and variable-width fields, recording the first
// error and returning zero values after it.
type cursor struct {
	b   []byte
	off int
	err error
}

func (r *cursor) fail() {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated or malformed at byte %d", errBadCommand, r.off)
	}
}

func (r *cursor) byte() byte {
	if r.err != nil || r.off >= len(r.b) {
		r.fail()
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

func (r *cursor) u64() uint64 {
	if r.err != nil || len(r.b)-r.off < 8 {
		r.fail()
		return 0
	}
	r.off += 8
	return binary.BigEndian.Uint64(r.b[r.off-8:])
}

func (r *cursor) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail()
		return 0
	}
	r.off += n
	return v
}

func (r *cursor) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)-r.off) {
		r.fail()
		return nil
	}
	v := r.b[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return v
}

package bookie

import (
	"errors"
	"fmt"

	"github.com/magnetar-mq/magnetar/internal/wire"
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
	// at holds where each entry starts in the encoded command (set by
	// decodeCommand, ignored by appendCommand).
	at []int
}

// errBadCommand means a Raft log entry is not a valid command.
var errBadCommand = errors.New("bookie: malformed command")

// appendCommand encodes c by appending it to dst.
func appendCommand(dst []byte, c command) []byte {
	dst = append(dst, commandVersion, byte(c.op))
	dst = wire.AppendUint64(dst, c.segment)
	switch c.op {
	case opCreate:
		dst = wire.AppendUint64(dst, uint64(c.start))
		dst = wire.AppendUint64(dst, c.epoch)
	case opAppend:
		dst = wire.AppendUint64(dst, c.epoch)
		dst = wire.AppendUvarint(dst, uint64(len(c.entries)))
		for _, e := range c.entries {
			dst = wire.AppendBytes(dst, e)
		}
	case opSeal:
		dst = wire.AppendUint64(dst, c.epoch)
		dst = wire.AppendUint64(dst, uint64(c.start))
	}
	return dst
}

// appendCommandSize bounds the encoded size of an append command, to size
// its buffer before appendCommand.
func appendCommandSize(entries [][]byte) int {
	n := 2 + 8 + 8 + wire.MaxVarintLen
	for _, e := range entries {
		n += wire.MaxVarintLen + len(e)
	}
	return n
}

// decodeCommand decodes a command; entries alias b.
func decodeCommand(b []byte) (command, error) {
	r := wire.NewReader(b)
	if v := r.Byte(); r.Err() == nil && v != commandVersion {
		return command{}, fmt.Errorf("%w: version %d", errBadCommand, v)
	}
	c := command{op: op(r.Byte()), segment: r.Uint64()}
	switch c.op {
	case opCreate:
		c.start = int64(r.Uint64())
		c.epoch = r.Uint64()
	case opAppend:
		c.epoch = r.Uint64()
		// Every entry takes at least its one-byte length, so the count is
		// bounded by the bytes left before anything is allocated.
		n := r.Count(1)
		if n > 0 {
			c.entries = make([][]byte, 0, n)
			c.at = make([]int, 0, n)
		}
		for i := 0; i < n && r.Err() == nil; i++ {
			e := r.Bytes()
			c.entries = append(c.entries, e)
			c.at = append(c.at, r.Offset()-len(e))
		}
	case opSeal:
		c.epoch = r.Uint64()
		c.start = int64(r.Uint64())
	case opDelete:
	default:
		if r.Err() == nil {
			return command{}, fmt.Errorf("%w: unknown op %d", errBadCommand, byte(c.op))
		}
	}
	if err := r.Done(); err != nil {
		return command{}, fmt.Errorf("%w: %w", errBadCommand, err)
	}
	return c, nil
}

package metadata

import (
	"fmt"

	"github.com/magnetar-mq/magnetar/internal/wire"
)

// opCode says what a command does. Codes are stored in the Raft log: never
// reuse or renumber one.
type opCode byte

const (
	opPut    opCode = 1
	opDelete opCode = 2
)

// command is one state change replicated through Raft. Its encoding:
//
//	put:    op | len(key) uvarint | key | expectedVersion varint | len(value) uvarint | value
//	delete: op | len(key) uvarint | key | expectedVersion varint
type command struct {
	op       opCode
	key      string
	expected int64
	value    []byte // put only
}

// appendTo appends the encoding of c to dst.
func (c *command) appendTo(dst []byte) []byte {
	dst = append(dst, byte(c.op))
	dst = wire.AppendString(dst, c.key)
	dst = wire.AppendVarint(dst, c.expected)
	if c.op == opPut {
		dst = wire.AppendBytes(dst, c.value)
	}
	return dst
}

// decodeCommand decodes a command; its value aliases b.
func decodeCommand(b []byte) (command, error) {
	r := wire.NewReader(b)
	c := command{op: opCode(r.Byte())}
	c.key = string(r.Bytes())
	c.expected = r.Varint()
	switch c.op {
	case opPut:
		c.value = r.Bytes()
	case opDelete:
	default:
		if r.Err() == nil {
			return command{}, fmt.Errorf("%w: unknown command op %d", ErrCorrupt, c.op)
		}
	}
	if err := r.Done(); err != nil {
		return command{}, corrupt(err)
	}
	if c.key == "" {
		return command{}, fmt.Errorf("%w: command with an empty key", ErrCorrupt)
	}
	return c, nil
}

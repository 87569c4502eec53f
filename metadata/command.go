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
	opTxn    opCode = 3
	opGrant  opCode = 4
	opRevoke opCode = 5
)

// command is one state change replicated through Raft. Its encoding:
//
//	put:    op | len(key) uvarint | key | expectedVersion varint | len(value) uvarint | value
//	delete: op | len(key) uvarint | key | expectedVersion varint
//	txn:    op | count uvarint | compares | count uvarint | then ops | count uvarint | else ops
//	grant:  op | ttl in milliseconds varint
//	revoke: op | lease varint
//
// The compares and ops of a txn are encoded as in txncodec.go.
type command struct {
	op       opCode
	key      string     // put, delete
	expected int64      // put, delete
	value    []byte     // put
	txn      TxnRequest // txn
	ttlMs    int64      // grant
	lease    LeaseID    // revoke
}

// appendTo appends the encoding of c to dst.
func (c *command) appendTo(dst []byte) []byte {
	dst = append(dst, byte(c.op))
	switch c.op {
	case opPut, opDelete:
		dst = wire.AppendString(dst, c.key)
		dst = wire.AppendVarint(dst, c.expected)
		if c.op == opPut {
			dst = wire.AppendBytes(dst, c.value)
		}
	case opTxn:
		dst = appendTxn(dst, &c.txn)
	case opGrant:
		dst = wire.AppendVarint(dst, c.ttlMs)
	case opRevoke:
		dst = wire.AppendVarint(dst, int64(c.lease))
	}
	return dst
}

// decodeCommand decodes a command; its values alias b.
func decodeCommand(b []byte) (command, error) {
	r := wire.NewReader(b)
	c := command{op: opCode(r.Byte())}
	switch c.op {
	case opPut, opDelete:
		c.key = string(r.Bytes())
		c.expected = r.Varint()
		if c.op == opPut {
			c.value = r.Bytes()
		}
		if r.Err() == nil && c.key == "" {
			return command{}, fmt.Errorf("%w: command with an empty key", ErrCorrupt)
		}
	case opTxn:
		c.txn = readTxn(&r)
	case opGrant:
		c.ttlMs = r.Varint()
		if r.Err() == nil && c.ttlMs < 1 {
			return command{}, fmt.Errorf("%w: lease grant with ttl %d ms", ErrCorrupt, c.ttlMs)
		}
	case opRevoke:
		c.lease = LeaseID(r.Varint())
		if r.Err() == nil && c.lease <= 0 {
			return command{}, fmt.Errorf("%w: revoke of lease %d", ErrCorrupt, c.lease)
		}
	default:
		if r.Err() == nil {
			return command{}, fmt.Errorf("%w: unknown command op %d", ErrCorrupt, c.op)
		}
	}
	if err := r.Done(); err != nil {
		return command{}, corrupt(err)
	}
	if c.op == opTxn {
		if err := c.txn.Validate(); err != nil {
			return command{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
	}
	return c, nil
}

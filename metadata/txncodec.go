package metadata

import "github.com/magnetar-mq/magnetar/internal/wire"

// The compares and ops of a txn command:
//
//	compare:    target byte | op byte | len(key) uvarint | key | operand
//	  operand:  version varint (TargetVersion) or len(value) uvarint | value (TargetValue)
//	put op:     OpPut byte | len(key) uvarint | key | len(value) uvarint | value | lease varint
//	delete op:  OpDelete byte | len(key) uvarint | key

// Smallest encodings, which bound the counts read before allocating.
const (
	minCompareSize = 4 // target, op, empty key, one-byte operand
	minOpSize      = 2 // type, empty key
)

func appendTxn(dst []byte, t *TxnRequest) []byte {
	dst = wire.AppendUvarint(dst, uint64(len(t.Compares)))
	for i := range t.Compares {
		c := &t.Compares[i]
		dst = append(dst, byte(c.Target), byte(c.Op))
		dst = wire.AppendString(dst, c.Key)
		if c.Target == TargetValue {
			dst = wire.AppendBytes(dst, c.Value)
		} else {
			dst = wire.AppendVarint(dst, c.Version)
		}
	}
	dst = appendOps(dst, t.Then)
	return appendOps(dst, t.Else)
}

func appendOps(dst []byte, ops []Op) []byte {
	dst = wire.AppendUvarint(dst, uint64(len(ops)))
	for i := range ops {
		o := &ops[i]
		dst = append(dst, byte(o.Type))
		dst = wire.AppendString(dst, o.Key)
		if o.Type == OpPut {
			dst = wire.AppendBytes(dst, o.Value)
			dst = wire.AppendVarint(dst, int64(o.Lease))
		}
	}
	return dst
}

// readTxn reads a txn's compares and ops; values alias the reader's input.
// Unknown targets and op types fail the reader (their operands cannot be
// read); the caller validates the rest.
func readTxn(r *wire.Reader) TxnRequest {
	var t TxnRequest
	if n := r.Count(minCompareSize); n > 0 {
		t.Compares = make([]Compare, 0, n)
		for i := 0; i < n && r.Err() == nil; i++ {
			c := Compare{Target: CompareTarget(r.Byte()), Op: CompareOp(r.Byte())}
			c.Key = string(r.Bytes())
			switch c.Target {
			case TargetVersion:
				c.Version = r.Varint()
			case TargetValue:
				c.Value = r.Bytes()
			default:
				r.Fail("unknown compare target")
			}
			t.Compares = append(t.Compares, c)
		}
	}
	t.Then = readOps(r)
	t.Else = readOps(r)
	return t
}

func readOps(r *wire.Reader) []Op {
	n := r.Count(minOpSize)
	if n == 0 {
		return nil
	}
	ops := make([]Op, 0, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		o := Op{Type: OpType(r.Byte())}
		o.Key = string(r.Bytes())
		switch o.Type {
		case OpPut:
			o.Value = r.Bytes()
			o.Lease = LeaseID(r.Varint())
		case OpDelete:
		default:
			r.Fail("unknown op type")
		}
		ops = append(ops, o)
	}
	return ops
}

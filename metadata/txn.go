package metadata

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
)

// CompareTarget is what a Compare looks at.
type CompareTarget byte

const (
	// TargetVersion compares the key's Version; an absent key has version 0.
	TargetVersion CompareTarget = 1
	// TargetValue compares the key's value bytewise; a compare of the value
	// of an absent key is always false.
	TargetValue CompareTarget = 2
)

// CompareOp is how a Compare's operand is compared with the target.
type CompareOp byte

const (
	CmpEqual    CompareOp = 1 // target == operand
	CmpNotEqual CompareOp = 2 // target != operand
	CmpLess     CompareOp = 3 // target < operand
	CmpGreater  CompareOp = 4 // target > operand
)

// Compare is one condition of a Txn on the current state of one key.
type Compare struct {
	Key    string
	Target CompareTarget
	Op     CompareOp
	// Version is the operand of a TargetVersion compare.
	Version int64
	// Value is the operand of a TargetValue compare.
	Value []byte
}

// CompareVersion compares the key's version (0 when absent) with v.
func CompareVersion(key string, op CompareOp, v int64) Compare {
	return Compare{Key: key, Target: TargetVersion, Op: op, Version: v}
}

// CompareValue compares the key's value with v; false if the key is absent.
func CompareValue(key string, op CompareOp, v []byte) Compare {
	return Compare{Key: key, Target: TargetValue, Op: op, Value: v}
}

// KeyExists holds when the key exists.
func KeyExists(key string) Compare { return CompareVersion(key, CmpGreater, 0) }

// KeyMissing holds when the key does not exist.
func KeyMissing(key string) Compare { return CompareVersion(key, CmpEqual, 0) }

// OpType says what an Op does.
type OpType byte

const (
	// OpPut writes the key (unconditionally: a Txn's compares are its
	// conditions) and attaches it to Op.Lease, or detaches it from any lease
	// when Op.Lease is NoLease.
	OpPut OpType = 1
	// OpDelete deletes the key; deleting an absent key changes nothing.
	OpDelete OpType = 2
)

// Op is one write of a Txn.
type Op struct {
	Type  OpType
	Key   string
	Value []byte  // OpPut only
	Lease LeaseID // OpPut only
}

// PutOp returns an op that writes key (with no lease; see WithLease).
func PutOp(key string, value []byte) Op { return Op{Type: OpPut, Key: key, Value: value} }

// DeleteOp returns an op that deletes key.
func DeleteOp(key string) Op { return Op{Type: OpDelete, Key: key} }

// WithLease returns the put op with its key attached to the lease.
func (o Op) WithLease(id LeaseID) Op { o.Lease = id; return o }

// TxnRequest is an atomic, linearizable multi-key operation, as in etcd:
// if every Compare holds on the current state, the Then ops are applied,
// otherwise the Else ops. A branch may not hold two ops on the same key.
// All the writes of a txn take one revision (every written key gets the
// same ModRevision); a txn that changes nothing takes none.
type TxnRequest struct {
	Compares []Compare
	Then     []Op
	Else     []Op
}

// TxnResponse is the outcome of a Txn.
type TxnResponse struct {
	// Succeeded is true if every compare held (the Then branch ran).
	Succeeded bool
	// Revision is the store revision just after the txn: the txn's own
	// revision if it changed anything, otherwise the revision it read.
	Revision int64
	// Results has one entry per op of the branch that ran, in order.
	Results []OpResult
}

// OpResult is the result of one op of a Txn.
type OpResult struct {
	// KV is, for a put, the key as written (Value is the caller's slice).
	// For a delete it holds only Key and, if the key existed, ModRevision
	// (the txn's revision).
	KV KV
	// Deleted is true for a delete of a key that existed.
	Deleted bool
}

// Validate checks the request's shape (keys, targets, operators, op types,
// no key twice in one branch) without looking at the state; it returns an
// error wrapping ErrInvalidKey or ErrInvalidTxn. Every Store validates
// requests this way, so implementations reject the same requests.
func (r *TxnRequest) Validate() error {
	for i := range r.Compares {
		c := &r.Compares[i]
		if c.Key == "" {
			return fmt.Errorf("%w: compare %d has an empty key", ErrInvalidKey, i)
		}
		if c.Target != TargetVersion && c.Target != TargetValue {
			return fmt.Errorf("%w: compare %d has unknown target %d", ErrInvalidTxn, i, c.Target)
		}
		if c.Op < CmpEqual || c.Op > CmpGreater {
			return fmt.Errorf("%w: compare %d has unknown operator %d", ErrInvalidTxn, i, c.Op)
		}
	}
	if err := validateOps("then", r.Then); err != nil {
		return err
	}
	return validateOps("else", r.Else)
}

func validateOps(branch string, ops []Op) error {
	var seen map[string]struct{}
	if len(ops) > 1 {
		seen = make(map[string]struct{}, len(ops))
	}
	for i := range ops {
		o := &ops[i]
		if o.Key == "" {
			return fmt.Errorf("%w: %s op %d has an empty key", ErrInvalidKey, branch, i)
		}
		switch o.Type {
		case OpPut:
			if o.Lease < 0 {
				return fmt.Errorf("%w: %s op %d has negative lease %d", ErrInvalidTxn, branch, i, o.Lease)
			}
		case OpDelete:
			if len(o.Value) != 0 || o.Lease != NoLease {
				return fmt.Errorf("%w: %s op %d is a delete with a value or lease", ErrInvalidTxn, branch, i)
			}
		default:
			return fmt.Errorf("%w: %s op %d has unknown type %d", ErrInvalidTxn, branch, i, o.Type)
		}
		if seen != nil {
			if _, dup := seen[o.Key]; dup {
				return fmt.Errorf("%w: %s branch has two ops on %q", ErrInvalidTxn, branch, o.Key)
			}
			seen[o.Key] = struct{}{}
		}
	}
	return nil
}

// Holds reports whether the compare holds for the key's current state (ok
// is false when the key is absent). Every Store evaluates compares with it.
func (c *Compare) Holds(kv KV, ok bool) bool {
	var r int
	switch c.Target {
	case TargetVersion:
		v := int64(0)
		if ok {
			v = kv.Version
		}
		r = cmp.Compare(v, c.Version)
	case TargetValue:
		if !ok {
			return false
		}
		r = bytes.Compare(kv.Value, c.Value)
	default:
		return false
	}
	switch c.Op {
	case CmpEqual:
		return r == 0
	case CmpNotEqual:
		return r != 0
	case CmpLess:
		return r < 0
	case CmpGreater:
		return r > 0
	}
	return false
}

// Txn applies the request through Raft as one command: one Raft entry, one
// revision for all its writes.
func (s *Service) Txn(ctx context.Context, req TxnRequest) (TxnResponse, error) {
	if err := req.Validate(); err != nil {
		return TxnResponse{}, err
	}
	resp, err := s.apply(ctx, &command{op: opTxn, txn: req})
	if err != nil {
		return TxnResponse{}, err
	}
	tr, ok := resp.(TxnResponse)
	if !ok {
		return TxnResponse{}, fmt.Errorf("metadata: txn: unexpected response %T", resp)
	}
	ops := req.Then
	if !tr.Succeeded {
		ops = req.Else
	}
	for i := range tr.Results {
		if ops[i].Type == OpPut {
			tr.Results[i].KV.Value = ops[i].Value
		}
	}
	return tr, nil
}

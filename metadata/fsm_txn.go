package metadata

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// txn applies a Txn on top of revision rev: it evaluates the compares,
// checks that every lease the chosen branch attaches keys to exists, and
// only then writes, so a txn that fails writes nothing. Every write of the
// txn takes revision rev+1.
func (f *fsm) txn(b *pebble.Batch, rev int64, t *TxnRequest) (TxnResponse, error) {
	resp := TxnResponse{Succeeded: true}
	for i := range t.Compares {
		c := &t.Compares[i]
		kv, ok := f.read(b, c.Key)
		if !c.Holds(kv, ok) {
			resp.Succeeded = false
			break
		}
	}
	ops := t.Then
	if !resp.Succeeded {
		ops = t.Else
	}
	for i := range ops {
		if id := ops[i].Lease; id != NoLease && ops[i].Type == OpPut {
			if _, ok := f.readLease(b, id); !ok {
				return TxnResponse{}, fmt.Errorf("%w: %d (put of %q)", ErrLeaseNotFound, id, ops[i].Key)
			}
		}
	}
	if len(ops) > 0 {
		resp.Results = make([]OpResult, len(ops))
	}
	for i := range ops {
		o := &ops[i]
		cur, ok := f.read(b, o.Key)
		switch o.Type {
		case OpPut:
			resp.Results[i].KV = f.write(b, rev+1, o.Key, o.Value, o.Lease, cur, ok)
		case OpDelete:
			resp.Results[i].KV.Key = o.Key
			if ok {
				f.remove(b, rev+1, cur)
				resp.Results[i].KV.ModRevision = rev + 1
				resp.Results[i].Deleted = true
			}
		}
	}
	resp.Revision = rev
	if len(f.pending) > 0 {
		resp.Revision = rev + 1
	}
	return resp, nil
}

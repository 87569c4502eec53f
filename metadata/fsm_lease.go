package metadata

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/magnetar-mq/magnetar/internal/wire"
)

// leaseChange is a grant (ttlMs > 0) or a revoke (ttlMs == 0) applied by
// the FSM, reported to the lessor after the batch is committed.
type leaseChange struct {
	id    LeaseID
	ttlMs int64
}

// grant creates lease id (the Raft index of the grant, so every replica
// picks the same ID and none is ever reused). A grant changes no key and
// takes no revision.
func (f *fsm) grant(b *pebble.Batch, id LeaseID, ttlMs int64) LeaseID {
	f.buf = appendLeaseRecord(f.buf[:0], ttlMs)
	f.set(b, leaseKey(id), f.buf)
	f.leaseChanges = append(f.leaseChanges, leaseChange{id: id, ttlMs: ttlMs})
	return id
}

// revoke deletes lease id and every key attached to it, all at revision
// rev (no revision if no key was attached).
func (f *fsm) revoke(b *pebble.Batch, rev int64, id LeaseID) error {
	if _, ok := f.readLease(b, id); !ok {
		return fmt.Errorf("%w: %d", ErrLeaseNotFound, id)
	}
	span := attachSpan(id)
	it, err := b.NewIter(&pebble.IterOptions{LowerBound: span, UpperBound: prefixEnd(span)})
	if err != nil {
		panic(fmt.Sprintf("metadata: revoke lease %d: %v", id, err))
	}
	var keys []string
	for ok := it.First(); ok; ok = it.Next() {
		keys = append(keys, string(it.Key()[len(span):]))
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		panic(fmt.Sprintf("metadata: revoke lease %d: %v", id, err))
	}
	for _, key := range keys {
		cur, ok := f.read(b, key)
		if !ok || cur.Lease != id {
			// The index and the records are written together; a mismatch
			// is a broken invariant, but the index entry is wrong, not the
			// key: drop the entry and leave the key.
			f.logger.Error("lease index names a key not attached to the lease", "lease", id, "key", key)
			f.del(b, attachKey(id, key))
			continue
		}
		f.remove(b, rev, cur)
	}
	f.del(b, leaseKey(id))
	f.leaseChanges = append(f.leaseChanges, leaseChange{id: id})
	return nil
}

// readLease returns the TTL (in milliseconds) of lease id, or ok=false.
func (f *fsm) readLease(r pebble.Reader, id LeaseID) (ttlMs int64, ok bool) {
	if id <= 0 {
		return 0, false
	}
	val, closer, err := r.Get(leaseKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false
	}
	if err != nil {
		panic(fmt.Sprintf("metadata: read lease %d: %v", id, err))
	}
	defer closer.Close()
	ttlMs, err = decodeLeaseRecord(val)
	if err != nil {
		panic(fmt.Sprintf("metadata: lease %d: %v", id, err))
	}
	return ttlMs, true
}

// appendLeaseRecord encodes a lease's stored record:
//
//	format | ttl in milliseconds varint
func appendLeaseRecord(dst []byte, ttlMs int64) []byte {
	return wire.AppendVarint(append(dst, recordFormat), ttlMs)
}

// decodeLeaseRecord decodes a record written by appendLeaseRecord.
func decodeLeaseRecord(b []byte) (ttlMs int64, err error) {
	r := wire.NewReader(b)
	if f := r.Byte(); r.Err() == nil && f != recordFormat {
		r.Fail("unknown lease record format")
	}
	ttlMs = r.Varint()
	if r.Err() == nil && ttlMs < 1 {
		r.Fail("lease ttl below 1 ms")
	}
	if err := r.Done(); err != nil {
		return 0, corrupt(err)
	}
	return ttlMs, nil
}

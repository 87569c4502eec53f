package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/magnetar-mq/magnetar/metadata"
)

// Sentinel errors. ErrExists and ErrConflict also wrap
// metadata.ErrVersionMismatch, ErrNotFound wraps metadata.ErrNotFound.
var (
	// ErrExists means Create found the record already there.
	ErrExists = errors.New("catalog: already exists")
	// ErrNotFound means the record does not exist.
	ErrNotFound = errors.New("catalog: not found")
	// ErrConflict means a compare-and-swap lost: the record's version is not
	// the one the caller read (or it was deleted meanwhile).
	ErrConflict = errors.New("catalog: version conflict")
	// ErrInvalidName means a name cannot be made into a key (empty, or a
	// '/' inside one part).
	ErrInvalidName = errors.New("catalog: invalid name")
	// ErrCorrupt means a stored value does not decode as its record.
	ErrCorrupt = errors.New("catalog: corrupt record")
)

// DefaultPageSize is the page size of List when Page.Limit is 0.
const DefaultPageSize = 1000

// Entry is one record with its key and the store's versioning information.
type Entry[K any, M proto.Message] struct {
	Name  K
	Value M
	// Version is the compare-and-swap token: pass it to Update and Delete.
	Version     int64
	ModRevision int64
	// Lease is the lease the record is bound to (lease-bound stores only).
	Lease metadata.LeaseID
}

// Page asks for one page of a listing.
type Page struct {
	// After is the Next token of the previous page ("" for the first).
	After string
	// Limit caps the entries returned (0: DefaultPageSize).
	Limit int
}

// List is one page of records in key order.
type List[K any, M proto.Message] struct {
	Entries []Entry[K, M]
	// Next is the token for the following page; "" when this is the last.
	Next string
	// Revision is the store revision the page was read at.
	Revision int64
}

// table is the generic typed store: a record kind M stored under
// prefix+path(K). Every typed store embeds one.
type table[K any, M proto.Message] struct {
	s      metadata.Store
	prefix string
	path   func(K) (string, error)
	parse  func(rest string) (K, bool)
	newM   func() M
}

func (t *table[K, M]) key(k K) (string, error) {
	p, err := t.path(k)
	if err != nil {
		return "", err
	}
	return t.prefix + p, nil
}

func (t *table[K, M]) decode(k K, kv metadata.KV) (Entry[K, M], error) {
	m := t.newM()
	if err := proto.Unmarshal(kv.Value, m); err != nil {
		return Entry[K, M]{}, fmt.Errorf("%w: %s: %v", ErrCorrupt, kv.Key, err)
	}
	return Entry[K, M]{Name: k, Value: m, Version: kv.Version, ModRevision: kv.ModRevision, Lease: kv.Lease}, nil
}

// Get returns the record, or ok=false when it does not exist.
func (t *table[K, M]) Get(ctx context.Context, k K) (e Entry[K, M], ok bool, err error) {
	key, err := t.key(k)
	if err != nil {
		return e, false, err
	}
	kv, ok, err := t.s.Get(ctx, key)
	if err != nil || !ok {
		return e, false, err
	}
	e, err = t.decode(k, kv)
	return e, err == nil, err
}

// Create writes the record if it does not exist (ErrExists otherwise) and
// returns its version (1).
func (t *table[K, M]) Create(ctx context.Context, k K, m M) (int64, error) {
	return t.put(ctx, k, m, 0)
}

// Update replaces the record if its version is still version (ErrConflict
// otherwise; ErrNotFound if it is gone) and returns the new version.
func (t *table[K, M]) Update(ctx context.Context, k K, m M, version int64) (int64, error) {
	if version < 1 {
		return 0, fmt.Errorf("catalog: update needs the version read, got %d", version)
	}
	return t.put(ctx, k, m, version)
}

// Set writes the record whatever its version (last writer wins), for
// records with a single writer, like a subscription's cursor.
func (t *table[K, M]) Set(ctx context.Context, k K, m M) (int64, error) {
	return t.put(ctx, k, m, metadata.AnyVersion)
}

func (t *table[K, M]) put(ctx context.Context, k K, m M, version int64) (int64, error) {
	key, err := t.key(k)
	if err != nil {
		return 0, err
	}
	val, err := proto.Marshal(m)
	if err != nil {
		return 0, err
	}
	kv, err := t.s.Put(ctx, key, val, version)
	if err != nil {
		return 0, t.casErr(ctx, key, version, err)
	}
	return kv.Version, nil
}

// casErr turns a store's version mismatch into ErrExists (create),
// ErrNotFound (update of a deleted record) or ErrConflict.
func (t *table[K, M]) casErr(ctx context.Context, key string, version int64, err error) error {
	switch {
	case errors.Is(err, metadata.ErrVersionMismatch) && version == 0:
		return fmt.Errorf("%w: %s: %w", ErrExists, key, err)
	case errors.Is(err, metadata.ErrVersionMismatch):
		if _, ok, gerr := t.s.Get(ctx, key); gerr == nil && !ok {
			return fmt.Errorf("%w: %s: %w", ErrNotFound, key, metadata.ErrNotFound)
		}
		return fmt.Errorf("%w: %s: %w", ErrConflict, key, err)
	case errors.Is(err, metadata.ErrNotFound):
		return fmt.Errorf("%w: %s: %w", ErrNotFound, key, err)
	}
	return err
}

// Delete removes the record if its version is still version (ErrConflict
// otherwise, ErrNotFound if absent); metadata.AnyVersion deletes it
// unconditionally, and then an absent record is not an error.
func (t *table[K, M]) Delete(ctx context.Context, k K, version int64) error {
	key, err := t.key(k)
	if err != nil {
		return err
	}
	if err := t.s.Delete(ctx, key, version); err != nil {
		return t.casErr(ctx, key, version, err)
	}
	return nil
}

// CreateBatch creates every record in one Txn, all or none: if any of them
// exists, nothing is written and the error is ErrExists. It returns the
// revision of the write. Keep batches to a few thousand records (one Raft
// entry, one gRPC message).
func (t *table[K, M]) CreateBatch(ctx context.Context, names []K, values []M) (int64, error) {
	if len(names) != len(values) {
		return 0, fmt.Errorf("catalog: %d names for %d values", len(names), len(values))
	}
	req := metadata.TxnRequest{
		Compares: make([]metadata.Compare, len(names)),
		Then:     make([]metadata.Op, len(names)),
	}
	for i, k := range names {
		key, err := t.key(k)
		if err != nil {
			return 0, err
		}
		val, err := proto.Marshal(values[i])
		if err != nil {
			return 0, err
		}
		req.Compares[i] = metadata.KeyMissing(key)
		req.Then[i] = metadata.PutOp(key, val)
	}
	resp, err := t.s.Txn(ctx, req)
	if err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("%w: one of %d records in the batch", ErrExists, len(names))
	}
	return resp.Revision, nil
}

// list returns one page of the records whose key path starts with scope.
func (t *table[K, M]) list(ctx context.Context, scope string, page Page) (List[K, M], error) {
	limit := page.Limit
	if limit <= 0 {
		limit = DefaultPageSize
	}
	prefix := t.prefix + scope
	opts := metadata.RangeOptions{Limit: limit}
	if page.After != "" {
		if !strings.HasPrefix(page.After, prefix) {
			return List[K, M]{}, fmt.Errorf("catalog: page token %q is not from this listing", page.After)
		}
		opts.StartAfter = page.After
	}
	res, err := t.s.Range(ctx, prefix, opts)
	if err != nil {
		return List[K, M]{}, err
	}
	out := List[K, M]{Entries: make([]Entry[K, M], 0, len(res.KVs)), Revision: res.Revision}
	for _, kv := range res.KVs {
		k, ok := t.parse(kv.Key[len(t.prefix):])
		if !ok {
			continue // not a key this layout writes; skip rather than fail the listing
		}
		e, err := t.decode(k, kv)
		if err != nil {
			return List[K, M]{}, err
		}
		out.Entries = append(out.Entries, e)
	}
	if res.More && len(res.KVs) > 0 {
		out.Next = res.KVs[len(res.KVs)-1].Key
	}
	return out, nil
}

// leasedTable is a table of lease-bound records: registrations and
// ownership that must vanish when their holder dies.
type leasedTable[K any, M proto.Message] struct {
	table[K, M]
}

// Register creates the record bound to the lease, in one Txn that succeeds
// only if the record does not exist (ErrExists otherwise: someone else
// holds it). The record is deleted when the lease expires or is revoked.
func (t *leasedTable[K, M]) Register(ctx context.Context, k K, m M, lease metadata.LeaseID) (int64, error) {
	if lease == metadata.NoLease {
		return 0, fmt.Errorf("catalog: register needs a lease")
	}
	key, err := t.key(k)
	if err != nil {
		return 0, err
	}
	val, err := proto.Marshal(m)
	if err != nil {
		return 0, err
	}
	resp, err := t.s.Txn(ctx, metadata.TxnRequest{
		Compares: []metadata.Compare{metadata.KeyMissing(key)},
		Then:     []metadata.Op{metadata.PutOp(key, val).WithLease(lease)},
	})
	if err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("%w: %s: %w", ErrExists, key, metadata.ErrVersionMismatch)
	}
	return resp.Results[0].KV.Version, nil
}

// RegisterWithTTL grants a lease of the given TTL and registers the record
// with it. On failure the lease is revoked. The caller keeps the lease
// alive (Store.KeepAlive) for as long as it holds the record, and revokes
// it to let go.
func (t *leasedTable[K, M]) RegisterWithTTL(ctx context.Context, k K, m M, ttl time.Duration) (metadata.LeaseID, int64, error) {
	if _, err := t.key(k); err != nil {
		return 0, 0, err
	}
	lease, err := t.s.Grant(ctx, ttl)
	if err != nil {
		return 0, 0, err
	}
	v, err := t.Register(ctx, k, m, lease)
	if err != nil {
		if rerr := t.s.Revoke(context.WithoutCancel(ctx), lease); rerr != nil && !errors.Is(rerr, metadata.ErrLeaseNotFound) {
			err = errors.Join(err, fmt.Errorf("catalog: revoking the unused lease: %w", rerr))
		}
		return 0, 0, err
	}
	return lease, v, nil
}

// Update replaces the record if its version is still version, keeping it
// bound to lease (the lease it was registered with: a put without it would
// detach the record from the lease).
func (t *leasedTable[K, M]) Update(ctx context.Context, k K, m M, version int64, lease metadata.LeaseID) (int64, error) {
	key, err := t.key(k)
	if err != nil {
		return 0, err
	}
	val, err := proto.Marshal(m)
	if err != nil {
		return 0, err
	}
	resp, err := t.s.Txn(ctx, metadata.TxnRequest{
		Compares: []metadata.Compare{metadata.CompareVersion(key, metadata.CmpEqual, version)},
		Then:     []metadata.Op{metadata.PutOp(key, val).WithLease(lease)},
	})
	if err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		return 0, t.casErr(ctx, key, version, metadata.ErrVersionMismatch)
	}
	return resp.Results[0].KV.Version, nil
}

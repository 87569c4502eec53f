package metadata

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors returned by every Store implementation.
var (
	// ErrVersionMismatch means a compare-and-swap precondition failed: the key's
	// current version is not the one the caller expected.
	ErrVersionMismatch = errors.New("metadata: version mismatch")
	// ErrNotFound means the key does not exist (returned by Delete with an
	// expected version when the key is absent).
	ErrNotFound = errors.New("metadata: key not found")
	// ErrClosed means the store has been closed.
	ErrClosed = errors.New("metadata: store closed")
	// ErrCompacted means a watch asked for history that is no longer kept; the
	// watcher must re-list and watch from the revision of that listing.
	ErrCompacted = errors.New("metadata: revision compacted")
	// ErrLeaseNotFound means the lease does not exist: it was never granted,
	// or it has expired or been revoked.
	ErrLeaseNotFound = errors.New("metadata: lease not found")
	// ErrInvalidTxn means a Txn is malformed: an unknown compare target,
	// operator or op type, or two ops on one key in the same branch.
	ErrInvalidTxn = errors.New("metadata: invalid txn")
	// ErrInvalidTTL means Grant was asked for a TTL below one millisecond.
	ErrInvalidTTL = errors.New("metadata: invalid lease ttl")
)

// AnyVersion, passed as the expected version, makes a Put or Delete
// unconditional. An expected version of 0 means "the key must not exist".
const AnyVersion int64 = -1

// LeaseID names a lease. IDs are positive and never reused; NoLease (0)
// means "no lease".
type LeaseID int64

// NoLease is the zero LeaseID: a key with no lease lives until deleted.
const NoLease LeaseID = 0

// KV is one key with its value and versioning information.
type KV struct {
	Key   string
	Value []byte
	// Version is 1 when the key is created and grows by one on every Put. A
	// deleted and re-created key starts again at 1.
	Version int64
	// CreateRevision and ModRevision are the store revisions at which the key
	// was created and last modified.
	CreateRevision int64
	ModRevision    int64
	// Lease is the lease the key is attached to (NoLease: none). The key is
	// deleted when that lease expires or is revoked.
	Lease LeaseID
}

// RangeOptions narrows a Range call.
type RangeOptions struct {
	// StartAfter, when set, skips keys up to and including it (paging).
	StartAfter string
	// Limit caps the number of keys returned; 0 means no limit.
	Limit int
}

// RangeResult is one page of a Range call.
type RangeResult struct {
	KVs []KV
	// More is true when Limit cut the listing short; continue with
	// StartAfter set to the last key returned.
	More bool
	// Revision is the store revision the listing was read at.
	Revision int64
}

// EventType says what happened to a key.
type EventType int

const (
	// EventPut is a create or an update.
	EventPut EventType = iota + 1
	// EventDelete is a delete; the event's KV carries only Key and ModRevision.
	EventDelete
)

// Event is one change seen by a watcher.
type Event struct {
	Type EventType
	KV   KV
}

// Store is the metadata service as every other component sees it: a
// linearizable key-value store with a global revision, compare-and-swap on
// per-key versions, and prefix watches.
type Store interface {
	// Get returns the key, or ok=false when it does not exist.
	Get(ctx context.Context, key string) (kv KV, ok bool, err error)
	// Range lists the keys with the given prefix in key order.
	Range(ctx context.Context, prefix string, opts RangeOptions) (RangeResult, error)
	// Put writes the key if its current version equals expectedVersion (0:
	// must not exist; AnyVersion: unconditional) and returns the new KV.
	Put(ctx context.Context, key string, value []byte, expectedVersion int64) (KV, error)
	// Delete removes the key if its current version equals expectedVersion
	// (AnyVersion: unconditional, and deleting an absent key is not an error).
	Delete(ctx context.Context, key string, expectedVersion int64) error
	// Watch streams the changes to keys with the given prefix, in revision
	// order, starting after fromRevision (0: only changes from now on). The
	// channel is closed when ctx ends or the store closes. If the history
	// after fromRevision is gone, Watch returns ErrCompacted.
	Watch(ctx context.Context, prefix string, fromRevision int64) (<-chan Event, error)
	// Txn atomically evaluates the request's compares and applies its Then
	// ops if they all hold, its Else ops otherwise (see TxnRequest).
	Txn(ctx context.Context, req TxnRequest) (TxnResponse, error)
	// Grant creates a lease with the given time to live (at least 1 ms,
	// kept to the millisecond) and returns its ID.
	Grant(ctx context.Context, ttl time.Duration) (LeaseID, error)
	// KeepAlive renews the lease for another full TTL, which it returns, or
	// fails with ErrLeaseNotFound if the lease has expired or was revoked.
	KeepAlive(ctx context.Context, id LeaseID) (time.Duration, error)
	// Revoke deletes the lease and, in one revision, every key attached to
	// it; ErrLeaseNotFound if there is no such lease.
	Revoke(ctx context.Context, id LeaseID) error
	// Close releases the store's resources.
	Close() error
}

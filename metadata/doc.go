// Package metadata is Magnetar's metadata service: the replacement for
// ZooKeeper that holds tenants, namespaces, topics, segment lists, cursors,
// ownership and policies. Every other component sees it as a Store (see
// store.go); Service is the real implementation and
// metadata/metadatatest.Store an in-memory one for unit tests. Both pass
// metadatatest.RunConformance.
//
// # Model
//
// The store is a sorted map from string keys to byte values with a global
// revision, like etcd's. Every change (a Put, or a Delete of a present key)
// takes the next revision: revisions are 1, 2, 3, ... with no gaps, and a
// failed compare-and-swap or a Delete of an absent key takes none. Each key
// carries a Version (1 when created, +1 per Put, back to 1 when re-created
// after a delete), its CreateRevision and its ModRevision.
//
// Writes are compare-and-swap on the version: Put(key, value, 0) creates and
// fails with ErrVersionMismatch if the key exists; Put(key, value, v) and
// Delete(key, v) succeed only at version v (a Delete of an absent key with a
// version gives ErrNotFound); AnyVersion makes them unconditional. Of any
// number of racing writers from the same version exactly one wins.
//
// Txn is the general atomic write, as in etcd: a list of compares (a key's
// version, where 0 means absent, with ==, !=, < or >; its value, bytewise;
// KeyExists and KeyMissing) and two lists of ops, Then and Else, each a Put
// (optionally attached to a lease) or a Delete, with no key twice in one
// list. If every compare holds the Then ops run, otherwise the Else ops.
// The whole txn is one Raft entry, so it is linearizable and atomic, and all
// its writes take one revision: every key it writes gets the same
// ModRevision and watchers see its events together. A txn that changes
// nothing (only compares, or deletes of absent keys) takes no revision.
//
// Range lists a prefix in key order, paged with StartAfter and Limit, from
// one consistent view, and reports the revision of that view. Watch(prefix,
// from) streams the events of every change under the prefix with a revision
// greater than from, in revision order, first from the history and then live;
// from = 0 means "from now on". The pattern for a consistent cache is: Range
// (all pages at one revision, or re-list), then Watch from the Range's
// revision.
//
// # Leases
//
// Grant(ttl) creates a lease and returns its LeaseID; a Txn put attaches a
// key to it (KV.Lease); a later put without the lease, or a delete, detaches
// the key. KeepAlive renews the lease for a full TTL; Revoke ends it. When a
// lease is revoked or expires (no KeepAlive for a TTL), every key attached to
// it is deleted in one revision, and watchers see the deletes; KeepAlive,
// Revoke and attaching then fail with ErrLeaseNotFound. This is how brokers
// hold bundle ownership: the keys vanish when their holder stops renewing.
//
// Which leases exist, their TTLs and their keys are replicated FSM state
// (so in snapshots); lease IDs are the Raft index of the grant, so every
// replica agrees on them. Time is not replicated: the leader keeps each
// lease's deadline in memory (lease.go), KeepAlive moves it without a Raft
// entry (so it must reach the leader; elsewhere it fails with an error
// wrapping raft.ErrNotLeader), and when a deadline passes the leader proposes
// the revoke through Raft. A node that becomes leader (including on start)
// first applies everything committed, then gives every lease a full TTL from
// that moment: a leader change never expires a live lease, though it may
// let a dead holder's keys live up to one TTL longer. Expiry is checked
// every 100 ms.
//
// # History and compaction
//
// The events of the last Config.HistoryRevisions revisions (default 100,000)
// are kept; older ones are deleted in chunks. A Watch from a revision that
// is gone returns ErrCompacted: the watcher re-lists and watches from the
// listing's revision. A watcher that reads so slowly that it falls behind
// the kept history has its channel closed (as it would be on Close); if it
// then resumes from the last revision it saw, it gets ErrCompacted.
//
// # Implementation
//
// Service is a Raft group (internal/raftnode; one voter for now) whose FSM
// keeps the state in Pebble, in Config.Dir/db next to the Raft log:
//
//	k/<key>                  a key's value, version, revisions and lease
//	h/<revision, 8 bytes BE> the events of that revision (the history)
//	l/<lease, 8 bytes BE>    a lease's TTL
//	a/<lease, 8 bytes BE><key> the keys attached to a lease (an index)
//	m/applied, m/revision, m/compacted
//	r/...                    the Raft log and stable store
//
// Put, Delete, Txn, Grant and Revoke encode a command (command.go),
// replicate it through Raft, and return once the FSM has applied it; the
// FSM checks the versions, compares and leases, writes the keys, lease
// index, history entry, new revision and applied index in one Pebble batch
// per Raft batch, and compacts the history, all deterministically. Reads (Get, Range) go to the local Pebble state, so on
// this single node a read sees every write that has returned.
//
// Watchers never slow writers down: after each batch the FSM hands its
// events to a hub (watch.go) that keeps a ring of recent events and wakes
// the watchers concerned; each watcher has its own goroutine that sends
// events from the ring, or from the history in Pebble when it has fallen
// behind the ring. Close stops Raft, closes every watch channel and waits
// for those goroutines, then closes the DB.
//
// Values returned by the store and carried by events must be treated as
// read-only; Get and Range return fresh copies.
package metadata

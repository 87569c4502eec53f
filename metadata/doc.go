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
// Range lists a prefix in key order, paged with StartAfter and Limit, from
// one consistent view, and reports the revision of that view. Watch(prefix,
// from) streams the events of every change under the prefix with a revision
// greater than from, in revision order, first from the history and then live;
// from = 0 means "from now on". The pattern for a consistent cache is: Range
// (all pages at one revision, or re-list), then Watch from the Range's
// revision.
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
//	k/<key>                  a key's value, version and revisions
//	h/<revision, 8 bytes BE> the events of that revision (the history)
//	m/applied, m/revision, m/compacted
//	r/...                    the Raft log and stable store
//
// Put and Delete encode a command (command.go), replicate it through Raft,
// and return once the FSM has applied it; the FSM checks the version, writes
// the key, the history entry and the new revision and applied index in one
// Pebble batch per Raft batch, and compacts the history, all
// deterministically. Reads (Get, Range) go to the local Pebble state, so on
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

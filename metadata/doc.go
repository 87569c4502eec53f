// Package metadata is Magnetar's metadata service: the replacement for
// ZooKeeper that holds tenants, namespaces, topics, segment lists, cursors,
// ownership and policies. Every other component sees it as a Store (see
// store.go). Service is the real implementation (one node of a Raft group
// of 1, 3 or 5 voters); Client is a Store backed by a cluster over gRPC
// (GRPCServer serves a Service's API, metadatapb its protobuf); and
// metadata/metadatatest.Store is an in-memory one for unit tests. All three
// pass metadatatest.RunConformance. How to run a cluster, its consistency
// guarantees and its failure behaviour, for operators: docs/metadata.md.
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
// entry (so it must reach the leader: elsewhere it fails with a
// *NotLeaderError naming the leader, which Client follows), and when a
// deadline passes the leader proposes the revoke through Raft. Expiry is
// checked every 100 ms, so a dead holder's keys go about one TTL after its
// last KeepAlive (tests/meta_lease_test.go: within TTL + 1 s of a SIGKILL
// on three processes). A node that becomes leader (including on start)
// first applies everything committed, then gives every lease a full TTL
// from that moment: a leader change never expires a live lease, though it
// may let a dead holder's keys live up to one TTL longer. Until it has
// done so it refuses KeepAlive as a follower would, and the client retries.
// A KeepAlive that finds its lease gone is confirmed with a majority before
// it is answered: a leader that was paused wakes up with every deadline
// past and may not know yet that it was deposed, and then answers
// NotLeader rather than tell a live holder its lease is gone.
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
// # Cluster and reads
//
// Service is one voter of a Raft group (internal/raftnode). With no
// Config.RaftAddr it is a group of one with an in-memory transport, as in
// `magnetar standalone`; with a RaftAddr and Config.Peers (every voter's
// ID, Raft address and client address, the same list on every node) it is
// one node of a cluster, as `magnetar meta` runs it. A majority must be up
// to elect a leader; Open waits for one.
//
// Writes (Put, Delete, Txn, Grant, Revoke) are linearizable: only the
// leader takes them, and they return once a majority stored the entry and
// the leader applied it. A follower refuses them with a *NotLeaderError
// (errors.Is ErrNotLeader) naming the leader's client address; the write
// was not executed. A write whose leader died or was deposed while it was
// in flight fails with ErrUnknownOutcome: it may or may not have applied.
//
// Reads (Get, Range) are linearizable by default: they are served by the
// leader only, after it confirmed with a majority that it still leads (and,
// once per term, applied every entry of earlier leaders), so a read sees
// every write acknowledged before it began; a follower answers them with a
// *NotLeaderError. Under a context from WithStaleReads they are served from
// the local state of whichever node is asked, leader or not, even with no
// leader: faster, a consistent prefix of the log (never a torn state), but
// possibly behind. Watch is served by any node from the events it has
// applied: complete and in order, a follower's a little behind the leader
// (it learns an entry is committed with the leader's next append or
// heartbeat).
//
// Client finds the leader from any address it is given, follows the
// redirects of followers and the leader changes, bounds every call to a
// node by its call timeout (a node that does not answer in time, as a
// paused one, is forgotten and the leader looked for on every node at
// once), and retries only what is safe: reads, unconditional writes, KeepAlive, Grant and Revoke always,
// compare-and-swap writes and Txns only when they surely did not execute
// (otherwise ErrUnknownOutcome). Its watches resume on the new leader from
// the last revision they delivered, so a failover neither loses nor repeats
// an event; a server sends a heartbeat on a quiet watch every second, and
// a watch silent for three of them resumes elsewhere.
//
// # Implementation
//
// Each node keeps its state in Pebble, in Config.Dir/db next to the Raft
// log:
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
// per Raft batch, and compacts the history, all deterministically, so
// every replica holds the same state at the same index. Reads go to the
// local Pebble state once the read is allowed (above). Raft snapshots
// stream the whole state and truncate the log.
//
// Watchers never slow writers down: after each batch the FSM hands its
// events to a hub (watch.go) that keeps a ring of recent events and wakes
// the watchers concerned; each watcher has its own goroutine that sends
// events from the ring, or from the history in Pebble when it has fallen
// behind the ring. Close stops Raft, closes every watch channel and waits
// for those goroutines, then closes the DB.
//
// A full disk would crash Pebble, so the leader keeps a free space reserve
// (Config.MinFreeBytes, diskspace.go): below it, writes that add data fail
// with ErrDiskFull before they are proposed, while reads, deletes, revokes
// and KeepAlive go on.
//
// Values returned by the store and carried by events must be treated as
// read-only; Get and Range return fresh copies.
package metadata

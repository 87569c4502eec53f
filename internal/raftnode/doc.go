// Package raftnode runs one hashicorp/raft node. Its log and stable store
// live either in a Pebble DB (Config.DB, under Config.LogPrefix, through
// internal/raftstore), which the FSM may share (the metadata service does),
// or in stores the caller supplies (Config.LogStore and Config.StableStore:
// bookie shards keep their log in hashicorp/raft-wal segment files and their
// state in a WAL-less Pebble instance; see package bookie).
//
// A Node is what the metadata service and every bookie shard build on. Open
// starts the node, bootstrapping the initial voters on the first start, and
// returns once a leader is known and, if this node is the leader, it has
// applied every committed entry. Apply replicates a command (on the leader;
// elsewhere it fails with raft.ErrNotLeader) and returns the FSM's response.
// Close shuts Raft down; the DB belongs to the caller, who closes it after.
//
// # Single node and cluster
//
// With no Config.BindAddr the node uses raft.InmemTransport and is a group
// of one voter. With a BindAddr it uses hashicorp's TCP transport, and
// Config.Peers lists the initial voters (ID and Raft address, this node
// included); every node bootstraps the same configuration on its first
// start, which hashicorp/raft accepts. A node needs a majority of the
// voters to elect a leader, so Open on a 3-node group waits until a second
// node is up.
//
// # Linearizable reads
//
// VerifyLeader implements the read-index rule: the first time a leader
// serves a read in a term it runs a Barrier, so every entry of earlier
// terms is applied; then, per read, it confirms with a majority that it is
// still the leader. Entries of its own term that were acknowledged are
// applied already (an Apply returns after the FSM applied it), so state read
// after VerifyLeader reflects every write acknowledged before the read.
// State and Leader report the node's role and who leads, for redirecting
// clients.
//
// # Durability contract
//
// The log store must make what it writes durable before it returns:
// internal/raftstore writes every log batch as a pebble.Sync batch (the
// default, Config.DB), and a caller's own LogStore and StableStore must do
// the same (hashicorp/raft-wal fsyncs each StoreLogs before it returns and
// commits its metadata and stable keys synchronously). A command is
// acknowledged only after its entry is durable in a majority's logs and
// applied on the leader, so an acknowledged command survives a crash even
// if the FSM's own writes do not: the FSM's writes may lag the log, and the
// log repairs them. FSMs built on a Node must follow these rules:
//
//  1. Apply writes the FSM's state changes without syncing, and writes the
//     Raft index of the entry it applied in the same atomic batch (the
//     "applied index"). An FSM that shares the log's DB writes with
//     pebble.NoSync: the next synced log write flushes the shared WAL, FSM
//     writes included. An FSM with its own store may keep no WAL at all
//     (package bookie): its writes reach the disk when its memtables flush,
//     in commit order. Either way a crash loses at most a suffix of FSM
//     writes whose log entries are already durable.
//  2. Apply skips every entry whose index is <= its stored applied index. On
//     restart Raft replays all entries after its last snapshot
//     (raft.Config.NoSnapshotRestoreOnStart is set: the FSM state is already
//     on disk, so Raft never calls Restore on start); entries the FSM had
//     already applied must not be applied twice, and those whose writes were
//     lost in a crash are applied again here.
//  3. FSM.Snapshot (or at the latest FSMSnapshot.Persist, before it returns)
//     makes the FSM state durable, e.g. db.LogData(nil, pebble.Sync) for an
//     FSM sharing the log's DB, or db.Flush for a WAL-less one. Raft
//     truncates the log up to the snapshot index after a snapshot, so no
//     entry whose effects could still be lost may be deleted.
//  4. Restore replaces the whole FSM state (including the applied index) with
//     the snapshot's, and makes it durable before it returns (Raft
//     truncates its log after a restore); it is used when a follower is too
//     far behind, or by an operator restore.
//
// Whoever owns the stores closes them after Node.Close, the FSM's first
// (a WAL-less FSM flushes on close, so the next start replays nothing),
// then the log's.
//
// Responses: whatever FSM.Apply returns is what Node.Apply returns; an error
// value is returned as Apply's error, so FSMs report rejected commands (e.g.
// a failed compare-and-swap) by returning an error.
//
// Shutdown: hashicorp/raft can leave an Apply future unresolved forever when
// it shuts down while the future is still queued (hashicorp/raft#498). Node
// therefore counts the futures it waits for, and Close first rejects new
// commands with ErrClosed, then waits for those in flight to finish (a
// running leader finishes them), and only then shuts Raft down. A node that
// lost its majority may never finish them, so that wait is bounded by
// Config.CloseTimeout; after it the callers still waiting get ErrClosed (the
// outcome of their command is unknown) and Raft is shut down anyway.
//
// Logging: hashicorp's hclog output goes to the Config.Logger (log/slog),
// filtered at Config.LogLevel ("warn" unless set).
package raftnode

// Package raftnode runs one hashicorp/raft node whose log, stable store and
// FSM state all live in one Pebble DB.
//
// A Node is what the metadata service and every bookie shard build on. Open
// starts the node (bootstrapping a single-voter configuration on the first
// start), waits until it is leader and has applied every committed entry,
// and returns. Apply replicates a command and returns the FSM's response.
// Close shuts Raft down; the DB belongs to the caller, who closes it after.
// For now the transport is raft.InmemTransport and the group has one voter;
// the TCP transport and peers come later without changing this API.
//
// # Durability contract
//
// The Raft log is stored by internal/raftstore under Config.LogPrefix in the
// same Pebble DB as the FSM, and every log write is a pebble.Sync batch.
// FSMs built on a Node must follow these rules:
//
//  1. Apply writes the FSM's state changes with pebble.NoSync, and writes the
//     Raft index of the entry it applied in the same batch (the "applied
//     index"). NoSync is enough because the next synced log write flushes the
//     shared WAL, FSM writes included; a crash can lose only a suffix of FSM
//     writes whose log entries are already durable.
//  2. Apply skips every entry whose index is <= its stored applied index. On
//     restart Raft replays all entries after its last snapshot
//     (raft.Config.NoSnapshotRestoreOnStart is set: the FSM state is already
//     on disk, so Raft never calls Restore on start); entries the FSM had
//     already applied must not be applied twice, and those whose writes were
//     lost in a crash are applied again here.
//  3. FSM.Snapshot (or at the latest FSMSnapshot.Persist, before it returns)
//     makes the FSM state durable, e.g. db.LogData(nil, pebble.Sync) or
//     db.Flush. Raft truncates the log up to the snapshot index after a
//     snapshot, so no entry whose effects could still be lost may be deleted.
//  4. Restore replaces the whole FSM state (including the applied index) with
//     the snapshot's; it is used when a follower is too far behind, or by an
//     operator restore.
//
// Responses: whatever FSM.Apply returns is what Node.Apply returns; an error
// value is returned as Apply's error, so FSMs report rejected commands (e.g.
// a failed compare-and-swap) by returning an error.
//
// Shutdown: hashicorp/raft can leave an Apply future unresolved forever when
// it shuts down while the future is still queued (hashicorp/raft#498). Node
// therefore counts the futures it waits for, and Close first rejects new
// commands with ErrClosed, then waits for those in flight to finish (a
// running leader finishes them), and only then shuts Raft down. No caller is
// left blocked and no goroutine outlives Close.
//
// Logging: hashicorp's hclog output goes to the Config.Logger (log/slog),
// filtered at Config.LogLevel ("warn" unless set).
package raftnode

// Package bookie is Magnetar's segment store: shards that hold the entries
// (Kafka RecordBatch v2 bytes) of partition segments, replicated by Raft.
//
// Brokers talk to it through [Client]. A [Shard] implements Client in
// process; a [RemoteClient] implements it over gRPC; package bookietest has
// an in-memory fake and the conformance suite every implementation passes
// (the shard in process, the fake, and a RemoteClient talking to a shard
// over loopback TCP).
//
// # Remote access
//
// The bookie gRPC service (bookiepb/bookie.proto) has one unary call per
// Client method; every request names its shard, so one server serves all
// the shards of a bookie process. [GRPCServer] serves Clients by shard
// ID, usually Shards:
//
//	g := grpc.NewServer(bookie.GRPCServerOptions()...)
//	bookie.NewGRPCServer(map[string]bookie.Client{"s1": s1, "s2": s2}, logger).Register(g)
//	err := g.Serve(lis) // in the service's group; stop g before closing the shards
//
// [Conns] holds connections to bookie processes and makes a RemoteClient
// per shard over them ([Conns.Shard]); [DialShard] is the short way for a
// process's only shard. A [Router] names the shard of each segment and
// places new ones: [OneShard] for a single shard, the registry package's
// Directory for the shards registered in the metadata service. Concurrent
// calls on one RemoteClient are multiplexed as HTTP/2 streams over one
// connection, so appends pipeline: many are in flight at once and share the
// shard's Raft batches and fsyncs, as in-process appends do. Entry bytes
// are marshaled straight from the caller's slices, and entries read are the
// slices protobuf unmarshaled, checked again (CRC and offsets) on arrival.
//
// Errors cross the wire as a gRPC status whose code is a hint for generic
// clients (NotFound, AlreadyExists, FailedPrecondition for a sealed
// segment, Aborted for a fenced writer, OutOfRange for a bad offset,
// InvalidArgument or DataLoss for a corrupt entry, Unavailable for a closed
// shard) and whose ErrorDetail names the sentinel error exactly; a
// RemoteClient turns it back into that sentinel, so errors.Is works the
// same on either side. A call that never got an answer (the bookie is down
// or the connection broke) returns the gRPC status error itself, code
// Unavailable: an append that failed that way may or may not be stored,
// and the writer resolves it as after any crash, by sealing.
//
// # Model
//
// A segment is a dense offset range of one partition with one writer. It is
// created open with the writer's epoch, receives appends whose entries carry
// consecutive offsets (the first entry's base offset is the segment's next
// offset, each later one starts right after the previous one's last
// offset), and is sealed once, after which it never changes. A writer whose
// epoch is older than the segment's is fenced: every append and the seal go
// through the shard's Raft log, so "append acknowledged before the seal is
// in the sealed segment, append after it fails" holds exactly. Sealing an
// unknown segment records it sealed and empty, so a writer that never got
// to create it cannot create it later.
//
// # Replication
//
// A shard is one Raft group of 1 or 3 replicas (ShardConfig.Peers, each
// with its Raft and gRPC address; no peers: one voter on an in-memory
// transport, as in standalone). Writes are Raft commands, so only the
// leader takes them: a follower answers ErrNotLeader inside a
// *NotLeaderError that names the leader's gRPC address, and the call was
// not executed. Read and Info on the leader are linearizable: the leader
// confirms with a majority that it still leads (a round of heartbeats,
// no log entry) before reading its applied state. Under WithFollowerReads
// any replica serves them from what it has applied: a prefix of the log, so
// every entry returned is committed and final, but recent ones may be
// missing. A single voter skips the leadership check.
//
// A write that was in flight when the leader lost its leadership or shut
// down fails with ErrUnknownOutcome: it may or may not commit. RemoteClient
// (DialShard, given every replica's address) sends each call to the
// leader, follows NotLeader answers, and retries only what surely did not
// run (refused by a follower or a closing replica, or never sent) or is
// harmless to repeat (Read, Info, Seal); an Append, CreateSegment or
// DeleteSegment with an unknown outcome returns ErrUnknownOutcome, and the
// writer seals the segment to learn where it ends. Every attempt on a
// replica has a deadline (ClientConfig): a replica that misses it counts
// as gone, which bounds how long a paused or cut-off leader stalls its
// shard, and a Read the leader fails itself (a timeout, an unreadable log)
// is served by the other replicas as a follower read. cmd/magnetar's `bookie`
// command runs one replica per process; docs/bookie.md shows how to run a
// shard.
//
// # State machine and write path
//
// A Shard replica is a Raft group member over two stores in
// ShardConfig.Dir (storage.go), with one group commit per Raft batch:
// hashicorp/raft gathers concurrent Apply calls into one batch of up to
// MaxAppendEntries commands, written to the log with one write and one
// fsync, then applied to the state as one Pebble batch.
//
//   - wal/ holds Raft's log and stable store: hashicorp/raft-wal segment
//     files (WALSegmentSize each, preallocated when the log moves to one),
//     written through walVFS on the shard's file system. Every StoreLogs
//     appends the batch's frames and a commit frame (a CRC-32C of the
//     batch) with one WriteAt and fsyncs before it returns; the segment
//     list and Raft's term and vote are in walMeta (wal/wal-meta, rewritten
//     and fsynced on rotation, truncation and elections). An append is
//     acknowledged once its command is fsynced in the log of a majority and
//     applied on the leader. On open raft-wal reads the tail segment up to
//     its last commit frame whose CRC matches, dropping a torn batch that
//     was never acknowledged. Truncation deletes whole segments.
//   - state/ holds the state machine in Pebble, with the WAL disabled: the
//     Raft log is its write-ahead log. The state machine (fsm) writes each
//     batch's changes and the last applied Raft index in one Pebble batch,
//     committed on a goroutine of its own once the commands are checked
//     and answered (the next batch, readers, Snapshot, Restore and Close
//     wait for it: fsm.settle). The writes reach the disk only when a
//     memtable flushes, in commit order, so after a crash the state is as
//     of some applied index, stored with it.
//     Raft replays the log after its last snapshot, and the fsm skips
//     entries at or below the stored index and applies the rest again. Raft
//     truncates its log only behind a snapshot or a restore: FSM.Snapshot
//     starts a flush of the state that the snapshot's Persist waits for
//     (Raft truncates after Persist), and Restore flushes, so no entry
//     whose effects could still be lost is deleted. Close stops Raft,
//     flushes and closes the state, then closes the log, so a clean
//     restart replays nothing.
//
// # Entries are written once
//
// The log already holds every appended entry, durably, in files that are
// written once and deleted whole, so the state does not copy it: an
// entry's value in the state is a 16-byte reference to it, the Raft index
// of its append command and where in the command it lies (logref.go), and
// a read resolves it from the log (raft-wal reads it from the segment
// file, through the page cache). So each appended byte is written to disk
// once on the append path; the state's memtable flushes carry only keys,
// references and metadata. BenchmarkShardWriteAmp measures 1.00 byte on
// disk per byte appended with 64 KiB entries and 1.08 with 1 KiB entries,
// where copying entries into the state wrote 2.0-2.1 (and 3.0-3.2 with the
// log in a second Pebble, 6-7 with a single database).
//
// The log must then keep what the state references. Each segment with
// referenced entries has a pin, the Raft index of its oldest one, kept in
// the state beside the references ("bk/p") and in memory (pinSet); the
// log's head is truncated no further than the lowest pin (walLog's
// DeleteRange), whatever Raft asks after a snapshot. Deleting a segment
// releases its pin, but the log lets go only once a flush has made the
// deletion durable (a crash before it would bring the references back)
// and no read that started before it is still resolving references.
// Pins are a replica's own: a snapshot stream carries entries inline, and
// a follower restored from one references nothing of its log.
//
// A segment kept while the log moves on would pin it forever (raft-wal
// truncates only from the head, by whole files). So once the log that Raft
// asked to truncate but pins held back passes ShardConfig.MaxHeldLogBytes
// (default 1 GiB), log compaction (logcompact.go) copies the oldest
// referenced entries into the state, in chunks of 4 MiB, moving each
// segment's pin past what it copied, flushes, and truncates, until at most
// half of that budget is held back. An entry is thus written once if its
// segment is deleted (offloaded to object storage, or past retention)
// within about a budget's worth of log, and twice if it lives longer,
// which is also what a BookKeeper bookie writes (journal, then entry log).
// Entries restored from a snapshot or copied by compaction are stored
// inline; a value is a reference exactly when it is 16 bytes long (a
// record batch has at least 61), so shards written before references
// existed read as they are.
//
// The state separates values of 256 bytes or more (entries copied by log
// compaction or restored) into blob files when a memtable flushes (Pebble
// value separation): compactions then move keys, not entries. A flush
// writes one sstable and one blob file (not Pebble's default of an sstable
// per 2 MiB). Raft's periodic snapshots add nothing: the state is already
// durable after the flush, so a replica's own snapshot is a marker
// (snapstore.go) and the stream of the state is made only when a follower
// needs one.
//
// Keys of the state:
//
//	"bk/a"                                  -> last applied Raft index (8 bytes BE)
//	"bk/m" <segment: 8 bytes BE>            -> segment metadata (see meta.go)
//	"bk/e" <segment: 8 BE> <base offset: 8 BE> -> one entry: a log reference (16 bytes), or the batch bytes
//	"bk/p" <segment: 8 BE>                  -> the segment's log pin (Raft index, base offset; this replica's own)
//	"bk/r"                                  -> present while a snapshot restore runs
//
// Entries of a segment sort by base offset, so Read is a seek to the entry
// holding the requested offset (SeekLT(fromOffset+1)) and a forward scan.
// Every entry's CRC is checked before Append proposes it and again when it
// is read: a corrupt entry is reported as ErrCorrupt, never returned.
//
// Commands are a small binary encoding (command.go) with a version byte.
// A snapshot stream (snapshot.go) is every key of the state machine from
// a Pebble snapshot of the live state, entries inline, with its applied
// index: it may be newer than the Raft snapshot it is sent for, and the
// follower's fsm skips the log entries it covers.
package bookie

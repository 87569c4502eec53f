// Package raftstore keeps a hashicorp/raft log and stable store inside a
// Pebble database, under a key prefix.
//
// Why: a Raft group's FSM (the metadata service, a bookie shard) keeps its
// state in Pebble. Putting the Raft log in the same database means one WAL and
// one fsync serve both: the log entries are written with pebble.Sync, and that
// sync also makes every earlier NoSync FSM write durable, because Pebble's WAL
// is a single ordered file.
//
// Key layout, for a prefix P (P must not be a prefix of another Store's
// prefix in the same DB):
//
//	P 'l' <index: 8 bytes big-endian>  -> encoded log record
//	P 's' <key>                        -> stable-store value
//
// Big-endian indexes sort numerically, so the first and last log are the
// first and last keys of the P'l' span. They are read once in New and then
// kept in memory; StoreLogs updates them and DeleteRange (a Pebble range
// delete) re-reads them with a bounded iterator, so FirstIndex and LastIndex
// never touch the disk.
//
// A log record is encoded by appending (appendLog) and decoded with a
// cursor that checks its error once (decodeLog):
//
//	version byte (1) | type byte | term uvarint | appendedAt varint (Unix ns, 0 = zero time)
//	| len(data) uvarint | data | len(extensions) uvarint | extensions
//
// The index is not repeated in the record: it is the key.
//
// Concurrency: hashicorp/raft reads logs from several goroutines (replication,
// the FSM runner) while one goroutine writes. Writes are serialized by a mutex
// so the cached first/last indexes always describe what a reader can see;
// reads take no lock.
//
// Stable-store keys missing from the store make Get and GetUint64 return
// ErrKeyNotFound, whose text is exactly "not found": hashicorp/raft compares
// error strings (err.Error() != "not found") to tell a missing key from a
// failure, so this sentinel cannot carry the usual "raftstore:" prefix.
package raftstore

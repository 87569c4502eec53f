// Package tiered is the cold tier: where sealed segments go when they
// leave the bookies' disks, so that a partition's backlog is bounded by an
// object store rather than by the bookies. docs/tiered.md describes it.
//
// What exists now is the storage layer under it, and the object format:
//
//   - [ObjectStore] is the one interface through which the cold tier
//     touches storage: Put (atomic: a reader sees the whole object or the
//     one it replaced), GetRange, Stat, Delete (of an absent object is no
//     error) and List (in key order, paged by the store). Every call takes
//     a context and is tried once: retrying, with backoff, is the caller's
//     choice. Keys are '/'-separated paths checked by [ValidateKey]; errors
//     wrap [ErrNotFound], [ErrInvalidKey] and [ErrOutOfRange].
//   - [LocalStore] keeps objects as files in a directory (temporary file,
//     fsync, rename, directory fsync), every access confined to it by an
//     os.Root. It needs no setup: the default of a single-node deployment.
//   - [S3Store] keeps them in an S3-compatible bucket through minio-go,
//     configured by [S3Config] (its flags are not registered by any command
//     yet).
//   - Package storetest holds the conformance suite both pass, the latter
//     against a real S3 server (versitygw) the tests start.
//   - Package tiered/segment is the format of one offloaded segment: its
//     batches as stored, sparse offset and time indexes, and a checksummed
//     footer, readable with range reads (docs/tiered-format.md).
//
// Not built yet, so sealed segments still stay on the bookies and the
// offload thresholds of the broker and namespace policies do nothing: the
// offloader (choosing sealed segments, upload, verify, record the object in
// the metadata service, delete the bookie copy after a grace period, all
// crash-safe) and the reader (bookie or object store behind one partition
// log, with read-ahead and a local cache).
package tiered

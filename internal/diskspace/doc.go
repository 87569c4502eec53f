// Package diskspace keeps a free-space reserve on a disk. Pebble cannot
// survive a failed write (a WAL write or a MANIFEST creation that fails,
// ENOSPC included, is fatal), so a store on Pebble must refuse new data
// before its disk is full rather than handle a full disk: the roles that
// write (the bookie's appends, the metadata service's puts) check a
// Reserve first and fail with their own disk-full error below it, leaving
// room for what is in flight, Raft's entries, deletes and Pebble's
// flushes and compactions.
package diskspace

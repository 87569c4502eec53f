// Package registry keeps the segment store's shards in the metadata
// service and places new segments on them.
//
// A bookie process registers itself with a [Registrar]: on start it writes
// the row of every shard it hosts a replica of (catalog Shards: the
// members and their gRPC addresses; the first member to start creates it,
// and a member whose list disagrees with the stored one is refused), then
// keeps a lease-bound row of its own (catalog Bookies) that it refreshes
// every few seconds with each replica's report: whether it leads its
// shard, and the shard's usage (segments, open segments, bytes). When the
// process dies its lease expires and the row goes; the shard rows stay, as
// shards outlive their members' processes.
//
// A broker reaches the shards through a [Directory], a bookie.Router: it
// reads the shard and bookie rows (again every few seconds, and at once on
// a shard it does not know), keeps one client per shard over shared
// connections (bookie.Conns), and places a new segment on the least-loaded
// shard that takes segments: an active shard whose leader has reported,
// with the fewest bytes stored, then the fewest open segments. Between
// refreshes it counts the segments it placed itself, so a burst of new
// segments spreads over the shards instead of piling on the one that was
// emptiest at the last refresh.
//
// The registrations are hints for placement and for operators (magctl
// bookies/shards): correctness does not depend on them. A segment records
// its shard in the partition's metadata; fencing and durability are the
// shard's (see package bookie).
package registry

// Package broker is the stateless serving layer of Magnetar: it owns the
// partitions it has loaded, assigns offsets, appends to the segment store
// and dispatches messages to subscriptions. Everything durable lives in the
// metadata service (topics, segment lists, cursors) and the segment store
// (record batches); a broker can be killed at any moment and another one,
// or the same one restarted, takes over.
//
// # Topics and partitions
//
// A topic is a metadata row (/topics/tenant/namespace/topic) holding its
// partition count; it costs nothing until used. A partition is loaded on
// first use: the broker raises the partition's epoch with a
// compare-and-swap and seals the segment the previous owner left open (with
// the new epoch, which fences the old owner's appends on the segment
// store). The first append opens a new segment at the sealed end offset
// (opensegment.go), so loading, reading and stats need no writable shard.
// Offsets are dense: the segment store refuses an append that does not
// continue the segment.
//
// # Ownership and lazy topics
//
// A broker registers with a lease (StartOwnership) and serves exactly the
// partitions of the bundles it owns: a namespace's partition-hash space is
// cut into bundles, each owned through a lease-bound key, assigned on
// first use to the live broker with the fewest (ownership.go, bundles.go).
// Other requests get a NotOwnerError naming the owner. A partition unused
// for Config.IdleTimeout with no consumer attached is unloaded (lazy.go).
// Without StartOwnership a broker owns everything. See docs/ownership.md.
//
// # Produce
//
// Each loaded partition has one append goroutine. Producers queue record
// batches; the goroutine takes everything queued, assigns consecutive base
// offsets and stores the group with one segment-store append (group
// commit). A batch is acknowledged only once the segment store has made it
// durable. If an append fails in a way whose outcome is unknown (the
// shard's leader went away, or did not answer within the bookie client's
// deadline), the partition fails and is reloaded on next use; the reload
// seals the segment at what was really stored, so no offset is handed out
// twice. A shard refusing new data for a full disk stored nothing: the
// group fails with bookie.ErrDiskFull, its offsets are given again, and
// the partition stays loaded.
//
// # Consume
//
// A subscription is a durable cursor: the next offset (everything below is
// acknowledged) plus individually acknowledged ranges above it, persisted
// every CursorFlushInterval and when a consumer closes. Consumers get
// messages within the permits they grant. Reads come from a per-partition
// tail cache of recent batches, else from the segment store. A
// subscription is Exclusive (one consumer at a time) or Shared (every
// consumer gets a share; a message unacknowledged by a consumer that
// leaves, or negatively acknowledged, goes to another; see shared.go).
//
// # Tenants, namespaces and policies
//
// A topic lives in a namespace of a tenant; both are metadata rows
// (tenants.go) that must exist first, except the default namespace, which
// the broker creates at start. Creating a child (namespace, topic) and
// rewriting its parent's row are one Txn, so "delete only when empty" and
// the namespace's max_topics hold under concurrency. Policies are stored
// on the namespace and overridden per topic; EffectivePolicies resolves
// them (topic, then namespace, then PolicyDefaults) from a cache that
// metadata watches keep current (policycache.go). Publish rate limits wait
// in partition.publish before a batch is queued (ratelimit.go), and so do
// backlog quotas that hold or refuse publishes (backlog.go).
//
// # Retention, TTL and backlog eviction
//
// A policy loop (retention.go) applies, every PolicyCheckInterval and to
// every loaded partition: roll by age, message TTL (cursors move forward,
// consumers stay), consumer_backlog_eviction, and retention, which deletes
// the oldest sealed segments once every durable cursor is past them and
// retention time or size is exceeded. Changes to a partition's segment
// list are made by its append goroutine only (roll, and retention's
// trim through partition.do), so the row's compare-and-swap never races
// itself. Offsets are never reused: the start offset moves up.
//
// # Locks
//
// Lock order: Broker.mu, then partition.mu, then subscription.mu (and
// subscription.flushMu before subscription.mu). Consumer.mu is a leaf.
package broker

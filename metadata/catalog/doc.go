// Package catalog is the typed view of the metadata service: tenants,
// namespaces with their policies, topics, partitions (epoch and segment
// list), cursors, broker and bookie registrations, shards and bundle
// ownership, each a compact protobuf record (catalogpb) in its own key
// range of any metadata.Store. Brokers, bookies and the admin API use it
// instead of building keys and protobufs by hand.
//
// # Stores
//
// Each kind of record has a typed store (Catalog.Topics, ...) with
//
//	Get(ctx, name) (Entry, ok, error)
//	List(ctx, scope..., Page) (List, error)  // paged, key order, one revision per page
//	Create(ctx, name, value) (version, error) // ErrExists if present
//	Update(ctx, name, value, version) (version, error) // CAS: ErrConflict, ErrNotFound
//	Set(ctx, name, value) (version, error)    // unconditional, single writers only
//	Delete(ctx, name, version) error          // CAS, or metadata.AnyVersion
//	CreateBatch(ctx, names, values) (revision, error) // one Txn, all or none
//
// An Entry carries the decoded value and its Version, the token for the
// next Update or Delete; lost races are ErrConflict, which also wraps
// metadata.ErrVersionMismatch. Records held by a live process (brokers,
// bookies, bundle owners) are lease-bound: Register(ctx, name, value,
// lease) creates the record attached to the lease in one Txn that fails
// with ErrExists if someone holds it; RegisterWithTTL grants the lease too.
// Their Update takes the lease, since a put without it would detach the
// record. When the holder stops renewing, the store deletes the record.
//
// # Key layout
//
// At a million topics every byte of a key is paid for in the store's
// Pebble keys, its history and every listing, so each kind has a
// one-letter prefix and names are stored as given:
//
//	t/<tenant>                                    Tenant
//	n/<tenant>/<ns>                               Namespace (policies)
//	o/<tenant>/<ns>/<topic>                       Topic (partitions, created)
//	p/<tenant>/<ns>/<topic>/<index>               Partition (epoch, segments)
//	c/<tenant>/<ns>/<topic>/<index>/<sub>         Cursor
//	b/<broker>                                    Broker (lease-bound)
//	k/<bookie>                                    Bookie (lease-bound)
//	s/<shard>                                     Shard
//	w/<tenant>/<ns>/<start>-<end>                 BundleOwner (lease-bound)
//	g/<group>                                     Group (a Kafka consumer group's topics)
//	i/seg                                         segment ID counter (decimal)
//
// Partition indexes are decimal; bundle ranges are 8 hex digits each. Name
// parts may not be empty or contain '/' (ErrInvalidName); brokers apply
// stricter rules. A subscription or group name, last in its key, may contain '/'.
// Listings are by prefix: the topics of a namespace are o/<tenant>/<ns>/,
// so a namespace's topics are one contiguous range.
//
// # Records
//
// catalogpb/catalog.proto defines the records. A topic row is about
// 8 bytes of value (partitions and creation time); unset fields cost
// nothing. Policies are only stored here; brokers enforce them.
package catalog

package catalog

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/magnetar-mq/magnetar/metadata"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

// Catalog is the typed view of a metadata.Store. It holds no state besides
// the store: make one wherever needed, share it freely.
type Catalog struct {
	s metadata.Store

	Tenants    *Tenants
	Namespaces *Namespaces
	Topics     *Topics
	Partitions *Partitions
	Cursors    *Cursors
	AckChunks  *AckChunks
	Brokers    *Brokers
	Bookies    *Bookies
	Shards     *Shards
	Bundles    *Bundles
	Groups     *Groups
}

// New returns the catalog over the store.
func New(s metadata.Store) *Catalog {
	return &Catalog{
		s: s,
		Tenants: &Tenants{table[string, *catalogpb.Tenant]{s, tenantPrefix, idPath("tenant"), parseID,
			func() *catalogpb.Tenant { return new(catalogpb.Tenant) }}},
		Namespaces: &Namespaces{table[NamespaceName, *catalogpb.Namespace]{s, namespacePrefix, nsPath, parseNamespace,
			func() *catalogpb.Namespace { return new(catalogpb.Namespace) }}},
		Topics: &Topics{table[TopicName, *catalogpb.Topic]{s, topicPrefix, topicPath, parseTopic,
			func() *catalogpb.Topic { return new(catalogpb.Topic) }}},
		Partitions: &Partitions{table[PartitionName, *catalogpb.Partition]{s, partitionPrefix, partitionPath, parsePartition,
			func() *catalogpb.Partition { return new(catalogpb.Partition) }}},
		Cursors: &Cursors{table[CursorName, *catalogpb.Cursor]{s, cursorPrefix, cursorPath, parseCursor,
			func() *catalogpb.Cursor { return new(catalogpb.Cursor) }}},
		AckChunks: &AckChunks{table[AckChunkName, *catalogpb.AckChunk]{s, ackChunkPrefix, ackChunkPath, parseAckChunk,
			func() *catalogpb.AckChunk { return new(catalogpb.AckChunk) }}},
		Brokers: &Brokers{leasedTable[string, *catalogpb.Broker]{table[string, *catalogpb.Broker]{s, brokerPrefix, idPath("broker"), parseID,
			func() *catalogpb.Broker { return new(catalogpb.Broker) }}}},
		Bookies: &Bookies{leasedTable[string, *catalogpb.Bookie]{table[string, *catalogpb.Bookie]{s, bookiePrefix, idPath("bookie"), parseID,
			func() *catalogpb.Bookie { return new(catalogpb.Bookie) }}}},
		Shards: &Shards{table[string, *catalogpb.Shard]{s, shardPrefix, idPath("shard"), parseID,
			func() *catalogpb.Shard { return new(catalogpb.Shard) }}},
		Bundles: &Bundles{leasedTable[BundleName, *catalogpb.BundleOwner]{table[BundleName, *catalogpb.BundleOwner]{s, bundlePrefix, bundlePath, parseBundle,
			func() *catalogpb.BundleOwner { return new(catalogpb.BundleOwner) }}}},
		Groups: &Groups{table[string, *catalogpb.Group]{s, groupPrefix, groupPath, parseGroup,
			func() *catalogpb.Group { return new(catalogpb.Group) }}},
	}
}

// Store returns the store the catalog is a view of, for what the typed
// stores do not cover (keeping leases alive, revoking them).
func (c *Catalog) Store() metadata.Store { return c.s }

func idPath(what string) func(string) (string, error) {
	return func(id string) (string, error) { return id, checkPart(what+" id", id) }
}

func cursorPath(c CursorName) (string, error) {
	p, err := partitionPath(c.Partition)
	if err != nil {
		return "", err
	}
	if c.Subscription == "" {
		return "", fmt.Errorf("%w: empty subscription", ErrInvalidName)
	}
	return p + "/" + c.Subscription, nil
}

// Tenants stores tenants under t/<tenant>.
type Tenants struct {
	table[string, *catalogpb.Tenant]
}

// List returns one page of every tenant, in name order.
func (t *Tenants) List(ctx context.Context, page Page) (List[string, *catalogpb.Tenant], error) {
	return t.list(ctx, "", page)
}

// Namespaces stores namespaces and their policies under n/<tenant>/<ns>.
type Namespaces struct {
	table[NamespaceName, *catalogpb.Namespace]
}

// List returns one page of the tenant's namespaces ("": every tenant's).
func (n *Namespaces) List(ctx context.Context, tenant string, page Page) (List[NamespaceName, *catalogpb.Namespace], error) {
	scope, err := scopePath(NamespaceName{Tenant: tenant})
	if err != nil {
		return List[NamespaceName, *catalogpb.Namespace]{}, err
	}
	return n.list(ctx, scope, page)
}

// Topics stores topics under o/<tenant>/<ns>/<topic>.
type Topics struct {
	table[TopicName, *catalogpb.Topic]
}

// List returns one page of the topics of ns; a zero ns lists every topic,
// one with only Tenant set the tenant's topics.
func (t *Topics) List(ctx context.Context, ns NamespaceName, page Page) (List[TopicName, *catalogpb.Topic], error) {
	scope, err := scopePath(ns)
	if err != nil {
		return List[TopicName, *catalogpb.Topic]{}, err
	}
	return t.list(ctx, scope, page)
}

// Partitions stores a partition's epoch and segment list, one row per
// partition under p/<tenant>/<ns>/<topic>/<index>, updated with
// compare-and-swap (the epoch fences older owners).
type Partitions struct {
	table[PartitionName, *catalogpb.Partition]
}

// List returns one page of the topic's partition rows (in key order:
// indexes sort as decimal strings, 0, 1, 10, 11, ..., 2).
func (p *Partitions) List(ctx context.Context, topic TopicName, page Page) (List[PartitionName, *catalogpb.Partition], error) {
	tp, err := topicPath(topic)
	if err != nil {
		return List[PartitionName, *catalogpb.Partition]{}, err
	}
	return p.list(ctx, tp+"/", page)
}

// Cursors stores subscription cursors under
// c/<tenant>/<ns>/<topic>/<index>/<subscription>.
type Cursors struct {
	table[CursorName, *catalogpb.Cursor]
}

// List returns one page of the partition's cursors, by subscription name.
func (c *Cursors) List(ctx context.Context, partition PartitionName, page Page) (List[CursorName, *catalogpb.Cursor], error) {
	pp, err := partitionPath(partition)
	if err != nil {
		return List[CursorName, *catalogpb.Cursor]{}, err
	}
	return c.list(ctx, pp+"/", page)
}

// AckChunks stores the chunks of cursors' individually acknowledged
// offsets under a/<tenant>/<ns>/<topic>/<index>/<subscription>/<chunk as
// 16 hex digits>, so a cursor's chunks list in offset order.
type AckChunks struct {
	table[AckChunkName, *catalogpb.AckChunk]
}

// List returns one page of the cursor's chunks, in offset order.
//
// Only the cursor's own chunks are returned: the rows of a subscription
// stored, before names were checked, with a '/' ("a/x") share the prefix of
// "a"'s and are left out of its list (a page may then hold fewer entries
// than its limit, or none, with Next set).
func (a *AckChunks) List(ctx context.Context, cursor CursorName, page Page) (List[AckChunkName, *catalogpb.AckChunk], error) {
	cp, err := cursorPath(cursor)
	if err != nil {
		return List[AckChunkName, *catalogpb.AckChunk]{}, err
	}
	l, err := a.list(ctx, cp+"/", page)
	if err != nil {
		return l, err
	}
	own := l.Entries[:0]
	for _, e := range l.Entries {
		if e.Name.Cursor == cursor {
			own = append(own, e)
		}
	}
	l.Entries = own
	return l, nil
}

// Brokers stores live brokers' registrations under b/<broker id>, bound to
// each broker's lease (Register, RegisterWithTTL).
type Brokers struct {
	leasedTable[string, *catalogpb.Broker]
}

// List returns one page of the registered brokers, by ID.
func (b *Brokers) List(ctx context.Context, page Page) (List[string, *catalogpb.Broker], error) {
	return b.list(ctx, "", page)
}

// Bookies stores live storage nodes' registrations under k/<bookie id>,
// lease-bound like brokers.
type Bookies struct {
	leasedTable[string, *catalogpb.Bookie]
}

// List returns one page of the registered bookies, by ID.
func (b *Bookies) List(ctx context.Context, page Page) (List[string, *catalogpb.Bookie], error) {
	return b.list(ctx, "", page)
}

// Shards stores bookie shards (members and state) under s/<shard id>. A
// shard outlives its members' leases, so it is not lease-bound.
type Shards struct {
	table[string, *catalogpb.Shard]
}

// List returns one page of the shards, by ID.
func (s *Shards) List(ctx context.Context, page Page) (List[string, *catalogpb.Shard], error) {
	return s.list(ctx, "", page)
}

// Groups stores groups (see catalogpb.Group) under g/<group>; a group name
// may contain '/'.
type Groups struct {
	table[string, *catalogpb.Group]
}

// List returns one page of the groups, by name.
func (g *Groups) List(ctx context.Context, page Page) (List[string, *catalogpb.Group], error) {
	return g.list(ctx, "", page)
}

func groupPath(group string) (string, error) {
	if group == "" {
		return "", fmt.Errorf("%w: empty group", ErrInvalidName)
	}
	return group, nil
}

func parseGroup(rest string) (string, bool) { return rest, rest != "" }

// Bundles stores bundle ownership under w/<tenant>/<ns>/<start>-<end> (hash
// range in 8 hex digits each), bound to the owning broker's lease: Register
// acquires a free bundle, the owner's lease expiry or Revoke frees it.
type Bundles struct {
	leasedTable[BundleName, *catalogpb.BundleOwner]
}

// List returns one page of the owned bundles of ns (zero ns: all, by
// namespace then hash range).
func (b *Bundles) List(ctx context.Context, ns NamespaceName, page Page) (List[BundleName, *catalogpb.BundleOwner], error) {
	scope, err := scopePath(ns)
	if err != nil {
		return List[BundleName, *catalogpb.BundleOwner]{}, err
	}
	return b.list(ctx, scope, page)
}

// NextSegmentID returns a cluster-unique segment ID (1, 2, 3, ...) from a
// counter row, i/seg, raised with compare-and-swap.
func (c *Catalog) NextSegmentID(ctx context.Context) (uint64, error) {
	for {
		kv, ok, err := c.s.Get(ctx, segmentIDKey)
		if err != nil {
			return 0, err
		}
		var cur uint64
		var version int64
		if ok {
			cur, err = strconv.ParseUint(string(kv.Value), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%w: segment id counter %q", ErrCorrupt, kv.Value)
			}
			version = kv.Version
		}
		next := cur + 1
		_, err = c.s.Put(ctx, segmentIDKey, []byte(strconv.FormatUint(next, 10)), version)
		if errors.Is(err, metadata.ErrVersionMismatch) {
			continue
		}
		if err != nil {
			return 0, err
		}
		return next, nil
	}
}

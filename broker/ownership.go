package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/magnetar-mq/magnetar/metadata"
	"github.com/magnetar-mq/magnetar/metadata/catalog"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

// Ownership: which broker serves which partitions.
//
// A broker registers itself (catalog Brokers, b/<id>) bound to a lease it
// keeps alive. A namespace's partitions fall into bundles (bundles.go); a
// bundle is owned by the broker named in its lease-bound key (catalog
// Bundles, w/<tenant>/<ns>/<range>), bound to that broker's lease, so the
// key vanishes when the broker dies (its lease expires) or shuts down
// (it revokes the lease). A broker serves exactly the partitions of the
// bundles it owns; any other request gets a NotOwnerError naming the owner.
//
// Assignment: the first lookup or request that finds a bundle unowned
// assigns it to the live broker owning the fewest bundles (ties broken by
// a hash of bundle and broker ID, so concurrent assigners agree), by
// creating the bundle's key bound to that broker's lease. Creation is a
// compare-and-swap on the key's absence: of concurrent assigners one wins
// and the others read its choice. The chosen broker learns it owns the
// bundle when a request for one of its partitions arrives (it reads the
// key), and loads the partition then; loading raises the partition's epoch
// and seals the previous owner's open segment, which fences it.
//
// Unload (admin): the owner stops taking requests for the bundle, closes
// its loaded partitions (appends queued finish, cursors are flushed),
// deletes the key and assigns the bundle again, to another broker when
// there is one. Clean shutdown: the broker deletes its registration (no
// new bundles come to it), refuses new requests, closes every partition
// and revokes its lease, which frees all its bundles in one revision.
//
// Without StartOwnership (unit tests of a lone broker) a broker owns
// everything.

// ErrNotOwner means this broker does not own the partition's bundle; the
// client should look the partition up again and go to its owner.
var ErrNotOwner = errors.New("broker: not the owner of the partition's bundle")

// ErrNoBroker means no live broker is registered to assign a bundle to.
var ErrNoBroker = errors.New("broker: no live broker to own the bundle")

// NotOwnerError is ErrNotOwner with the owner, when known.
type NotOwnerError struct {
	Bundle Bundle
	// Owner is the bundle's owner; zero while the bundle moves.
	Owner Owner
}

func (e *NotOwnerError) Error() string {
	if e.Owner.ID == "" {
		return fmt.Sprintf("%v: bundle %s is moving; look it up again", ErrNotOwner, e.Bundle)
	}
	return fmt.Sprintf("%v: bundle %s is owned by %s (%s)", ErrNotOwner, e.Bundle, e.Owner.ID, e.Owner.NativeAddr)
}

func (e *NotOwnerError) Unwrap() error { return ErrNotOwner }

// Advertised are the addresses a broker registers for clients.
type Advertised struct {
	Native, Kafka, Admin string
	Version              string
}

// Owner is a broker owning a bundle.
type Owner struct {
	ID         string `json:"id"`
	NativeAddr string `json:"native_addr"`
	KafkaAddr  string `json:"kafka_addr"`
	AdminAddr  string `json:"admin_addr"`
	// Self is true when the owner is this broker.
	Self bool `json:"-"`
}

// BrokerInfo is a live broker's registration.
type BrokerInfo struct {
	Owner
	StartedUnixMs int64  `json:"started_unix_ms"`
	Version       string `json:"version"`
	// Bundles counts the bundles it owns.
	Bundles int `json:"bundles"`
}

// BundleStatus is a bundle and its owner (zero Owner: none).
type BundleStatus struct {
	Bundle Bundle
	Owner  Owner
	// AcquiredUnixMs is when the owner got it.
	AcquiredUnixMs int64
}

type ownership struct {
	b     *Broker
	id    string
	row   *catalogpb.Broker
	log   *slog.Logger
	stop  chan struct{} // closed by close: ends keepAlive
	ended chan struct{} // closed when keepAlive returns

	mu struct {
		sync.Mutex
		lease    metadata.LeaseID
		draining bool
		owned    map[Bundle]*ownedBundle
		layouts  map[string]int // namespace -> bundle count
	}
}

type ownedBundle struct {
	unloading bool
}

// StartOwnership registers the broker in the metadata service under
// Config.ID (default: adv.Native) and starts keeping its lease alive; from
// then on it serves only the bundles it owns. Close deregisters it.
func (b *Broker) StartOwnership(ctx context.Context, adv Advertised) error {
	id := b.cfg.ID
	if id == "" {
		id = adv.Native
	}
	o := &ownership{b: b, id: id, log: b.log.With("broker_id", id), stop: make(chan struct{}), ended: make(chan struct{}),
		row: &catalogpb.Broker{NativeAddr: adv.Native, KafkaAddr: adv.Kafka, AdminAddr: adv.Admin,
			StartedUnixMs: time.Now().UnixMilli(), Version: adv.Version}}
	o.mu.owned = make(map[Bundle]*ownedBundle)
	o.mu.layouts = make(map[string]int)
	lease, err := o.register(ctx)
	if err != nil {
		return err
	}
	o.mu.lease = lease
	b.mu.Lock()
	if b.mu.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	b.mu.own = o
	b.mu.Unlock()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer close(o.ended)
		o.keepAlive()
	}()
	o.log.Info("broker registered", "native", adv.Native, "kafka", adv.Kafka, "admin", adv.Admin, "lease_ttl", b.cfg.LeaseTTL)
	return nil
}

// ID returns the broker's ID ("" before StartOwnership).
func (b *Broker) ID() string {
	if o := b.ownership(); o != nil {
		return o.id
	}
	return ""
}

func (b *Broker) ownership() *ownership {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.own
}

// register writes the broker's row bound to a new lease. A row of the same
// ID held by another lease is this broker's previous run (or a broker
// misconfigured with the same ID): its lease is revoked, which frees its
// bundles at once instead of after its TTL.
func (o *ownership) register(ctx context.Context) (metadata.LeaseID, error) {
	cat := o.b.cat
	for {
		lease, _, err := cat.Brokers.RegisterWithTTL(ctx, o.id, o.row, o.b.cfg.LeaseTTL)
		if err == nil {
			return lease, nil
		}
		if !errors.Is(err, catalog.ErrExists) {
			return 0, wrapMeta("register broker", err)
		}
		e, ok, err := cat.Brokers.Get(ctx, o.id)
		if err != nil {
			return 0, wrapMeta("register broker", err)
		}
		if !ok || e.Lease == metadata.NoLease {
			if ok {
				if err := cat.Brokers.Delete(ctx, o.id, e.Version); err != nil && !errors.Is(err, catalog.ErrConflict) && !errors.Is(err, catalog.ErrNotFound) {
					return 0, wrapMeta("register broker", err)
				}
			}
			continue
		}
		o.log.Warn("a registration with this broker ID is held: revoking it as a previous run of this broker", "lease", e.Lease)
		if err := cat.Store().Revoke(ctx, e.Lease); err != nil && !errors.Is(err, metadata.ErrLeaseNotFound) {
			return 0, wrapMeta("revoke previous registration", err)
		}
	}
}

// keepAlive renews the lease every third of its TTL. A lease found gone
// (the metadata service was out of reach for a TTL) means every bundle
// was lost: the broker unloads all its partitions and registers anew.
func (o *ownership) keepAlive() {
	ttl := o.b.cfg.LeaseTTL
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-o.stop:
			return
		case <-t.C:
		}
		o.mu.Lock()
		lease := o.mu.lease
		o.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), ttl/3)
		var err error
		if lease == metadata.NoLease {
			lease, err = o.register(ctx)
			if err == nil {
				o.mu.Lock()
				o.mu.lease = lease
				o.mu.Unlock()
				o.log.Info("broker registered again")
			}
		} else {
			_, err = o.b.cat.Store().KeepAlive(ctx, lease)
			if errors.Is(err, metadata.ErrLeaseNotFound) {
				o.lost()
			}
		}
		cancel()
		if err != nil {
			o.log.Warn("keeping the broker's lease alive", "err", err)
		}
	}
}

// lost drops every bundle after the lease expired under the broker.
func (o *ownership) lost() {
	o.log.Error("the broker's lease expired: its bundles are lost; unloading every partition")
	o.mu.Lock()
	o.mu.lease = metadata.NoLease
	clear(o.mu.owned)
	o.mu.Unlock()
	o.b.unloadMatching(func(TopicName, int32) bool { return true })
}

// Drain starts a clean shutdown (Close does it too): the broker deletes
// its registration, so no bundle is assigned to it any more and lookups
// stop naming it, and refuses every request with a redirect. Call it
// before the listeners stop taking new streams, so that clients are told
// where to go rather than finding the broker unreachable.
func (b *Broker) Drain() {
	if o := b.ownership(); o != nil {
		o.drain()
	}
}

// drain starts a clean shutdown: the registration is deleted so no bundle
// is assigned to this broker any more, and every request is refused.
func (o *ownership) drain() {
	o.mu.Lock()
	if o.mu.draining {
		o.mu.Unlock()
		return
	}
	o.mu.draining = true
	o.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), defaultFlushTimeout)
	defer cancel()
	if err := o.b.cat.Brokers.Delete(ctx, o.id, metadata.AnyVersion); err != nil {
		o.log.Warn("deleting the broker's registration", "err", err)
	}
}

// close ends the lease, freeing every bundle still held. Call it after
// the partitions are closed (their cursors flushed).
func (o *ownership) close() {
	close(o.stop)
	<-o.ended
	o.mu.Lock()
	lease := o.mu.lease
	o.mu.lease = metadata.NoLease
	o.mu.Unlock()
	if lease == metadata.NoLease {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultFlushTimeout)
	defer cancel()
	if err := o.b.cat.Store().Revoke(ctx, lease); err != nil && !errors.Is(err, metadata.ErrLeaseNotFound) {
		o.log.Warn("revoking the broker's lease", "err", err)
		return
	}
	o.log.Info("broker deregistered; its bundles are free")
}

// bundleCount returns how many bundles the namespace has.
func (b *Broker) bundleCount(ctx context.Context, namespace string) (int, error) {
	o := b.ownership()
	if o != nil {
		o.mu.Lock()
		n, ok := o.mu.layouts[namespace]
		o.mu.Unlock()
		if ok {
			return n, nil
		}
	}
	ns, err := splitNamespace(namespace)
	if err != nil {
		return 0, err
	}
	n := b.cfg.DefaultBundles
	e, ok, err := b.cat.Namespaces.Get(ctx, ns)
	if err != nil {
		return 0, wrapMeta("read namespace", err)
	}
	if ok && e.Value.GetBundles() > 0 {
		n = int(min(e.Value.GetBundles(), MaxBundles))
	}
	if o != nil {
		o.mu.Lock()
		o.mu.layouts[namespace] = n
		o.mu.Unlock()
	}
	return n, nil
}

// BundleOf returns the bundle holding a partition.
func (b *Broker) BundleOf(ctx context.Context, name TopicName, index int32) (Bundle, error) {
	n, err := b.bundleCount(ctx, name.NamespaceKey())
	if err != nil {
		return Bundle{}, err
	}
	return BundleFor(name.NamespaceKey(), n, PartitionHash(name, index)), nil
}

// Bundles returns the bundles of a namespace with their owners.
func (b *Broker) Bundles(ctx context.Context, namespace string) ([]BundleStatus, error) {
	n, err := b.bundleCount(ctx, namespace)
	if err != nil {
		return nil, err
	}
	out := make([]BundleStatus, 0, n)
	brokers := map[string]Owner{}
	for _, bd := range BundleRanges(namespace, n) {
		st := BundleStatus{Bundle: bd}
		e, ok, err := b.cat.Bundles.Get(ctx, bd.catName())
		if err != nil {
			return nil, wrapMeta("read bundle", err)
		}
		if ok {
			id := e.Value.GetBroker()
			owner, known := brokers[id]
			if !known {
				if owner, err = b.brokerOwner(ctx, id); err != nil {
					return nil, err
				}
				brokers[id] = owner
			}
			st.Owner, st.AcquiredUnixMs = owner, e.Value.GetAcquiredUnixMs()
		}
		out = append(out, st)
	}
	return out, nil
}

// brokerOwner returns a broker's addresses from its registration (just the
// ID if it has none).
func (b *Broker) brokerOwner(ctx context.Context, id string) (Owner, error) {
	owner := Owner{ID: id, Self: id == b.ID()}
	e, ok, err := b.cat.Brokers.Get(ctx, id)
	if err != nil {
		return Owner{}, wrapMeta("read broker", err)
	}
	if ok {
		owner.NativeAddr, owner.KafkaAddr, owner.AdminAddr = e.Value.GetNativeAddr(), e.Value.GetKafkaAddr(), e.Value.GetAdminAddr()
	}
	return owner, nil
}

// LiveBrokers returns the registered brokers, by ID, with the number of
// bundles each owns.
func (b *Broker) LiveBrokers(ctx context.Context) ([]BrokerInfo, error) {
	regs, err := b.liveBrokers(ctx)
	if err != nil {
		return nil, err
	}
	counts, err := b.bundleCounts(ctx)
	if err != nil {
		return nil, err
	}
	self := b.ID()
	out := make([]BrokerInfo, len(regs))
	for i, r := range regs {
		out[i] = BrokerInfo{Owner: Owner{ID: r.Name, NativeAddr: r.Value.GetNativeAddr(), KafkaAddr: r.Value.GetKafkaAddr(),
			AdminAddr: r.Value.GetAdminAddr(), Self: r.Name == self},
			StartedUnixMs: r.Value.GetStartedUnixMs(), Version: r.Value.GetVersion(), Bundles: counts[r.Name]}
	}
	return out, nil
}

func (b *Broker) liveBrokers(ctx context.Context) ([]catalog.Entry[string, *catalogpb.Broker], error) {
	var out []catalog.Entry[string, *catalogpb.Broker]
	var page catalog.Page
	for {
		l, err := b.cat.Brokers.List(ctx, page)
		if err != nil {
			return nil, wrapMeta("list brokers", err)
		}
		out = append(out, l.Entries...)
		if l.Next == "" {
			return out, nil
		}
		page.After = l.Next
	}
}

// bundleCounts counts the owned bundles of every namespace by broker.
func (b *Broker) bundleCounts(ctx context.Context) (map[string]int, error) {
	counts := map[string]int{}
	var page catalog.Page
	for {
		l, err := b.cat.Bundles.List(ctx, catalog.NamespaceName{}, page)
		if err != nil {
			return nil, wrapMeta("list bundles", err)
		}
		for _, e := range l.Entries {
			counts[e.Value.GetBroker()]++
		}
		if l.Next == "" {
			return counts, nil
		}
		page.After = l.Next
	}
}

// Owner returns the owner of a partition's bundle, assigning the bundle to
// a live broker if it has none.
func (b *Broker) Owner(ctx context.Context, name TopicName, index int32) (Owner, error) {
	bd, err := b.BundleOf(ctx, name, index)
	if err != nil {
		return Owner{}, err
	}
	return b.bundleOwner(ctx, bd, true)
}

// KeyOwner returns the owner of the bundle holding key in namespace (a
// Kafka group's coordinator), assigning it if needed.
func (b *Broker) KeyOwner(ctx context.Context, namespace, key string) (Owner, error) {
	n, err := b.bundleCount(ctx, namespace)
	if err != nil {
		return Owner{}, err
	}
	return b.bundleOwner(ctx, BundleFor(namespace, n, KeyHash(key)), true)
}

// bundleOwner reads the bundle's owner; if there is none and assign is
// set, it assigns one. Without ownership the broker owns everything.
func (b *Broker) bundleOwner(ctx context.Context, bd Bundle, assign bool) (Owner, error) {
	o := b.ownership()
	if o == nil {
		return Owner{Self: true}, nil
	}
	o.mu.Lock()
	st, mine := o.mu.owned[bd]
	draining := o.mu.draining
	o.mu.Unlock()
	if mine && !st.unloading && !draining {
		return Owner{ID: o.id, NativeAddr: o.row.NativeAddr, KafkaAddr: o.row.KafkaAddr, AdminAddr: o.row.AdminAddr, Self: true}, nil
	}
	e, ok, err := b.cat.Bundles.Get(ctx, bd.catName())
	if err != nil {
		return Owner{}, wrapMeta("read bundle", err)
	}
	if ok && e.Value.GetBroker() == o.id && draining {
		return Owner{}, nil // released when the shutdown ends: moving
	}
	if ok {
		return b.brokerOwner(ctx, e.Value.GetBroker())
	}
	if !assign {
		return Owner{}, nil
	}
	return o.assign(ctx, bd, "")
}

// assign gives an unowned bundle to the live broker with the fewest
// bundles (not exclude, unless it is the only one). If another assigner
// was first, its choice is returned.
func (o *ownership) assign(ctx context.Context, bd Bundle, exclude string) (Owner, error) {
	cat := o.b.cat
	for attempt := 0; ; attempt++ {
		if attempt == 10 {
			return Owner{}, fmt.Errorf("%w: bundle %s: brokers keep leaving", ErrNoBroker, bd)
		}
		regs, err := o.b.liveBrokers(ctx)
		if err != nil {
			return Owner{}, err
		}
		counts, err := o.b.bundleCounts(ctx)
		if err != nil {
			return Owner{}, err
		}
		var best *catalog.Entry[string, *catalogpb.Broker]
		for i := range regs {
			r := &regs[i]
			if r.Lease == metadata.NoLease || (r.Name == exclude && len(regs) > 1) {
				continue
			}
			if best == nil || cmp.Or(cmp.Compare(counts[r.Name], counts[best.Name]),
				cmp.Compare(rendezvous(bd, r.Name), rendezvous(bd, best.Name)), cmp.Compare(r.Name, best.Name)) < 0 {
				best = r
			}
		}
		if best == nil {
			return Owner{}, fmt.Errorf("%w: bundle %s", ErrNoBroker, bd)
		}
		_, err = cat.Bundles.Register(ctx, bd.catName(), &catalogpb.BundleOwner{Broker: best.Name, AcquiredUnixMs: time.Now().UnixMilli()}, best.Lease)
		switch {
		case err == nil:
			o.log.Info("bundle assigned", "bundle", bd.String(), "owner", best.Name, "owned_before", counts[best.Name])
			return Owner{ID: best.Name, NativeAddr: best.Value.GetNativeAddr(), KafkaAddr: best.Value.GetKafkaAddr(),
				AdminAddr: best.Value.GetAdminAddr(), Self: best.Name == o.id}, nil
		case errors.Is(err, catalog.ErrExists):
			e, ok, err := cat.Bundles.Get(ctx, bd.catName())
			if err != nil {
				return Owner{}, wrapMeta("read bundle", err)
			}
			if ok {
				return o.b.brokerOwner(ctx, e.Value.GetBroker())
			}
		case errors.Is(err, metadata.ErrLeaseNotFound):
			// The broker died (or left) since we listed it: choose again.
		default:
			return Owner{}, wrapMeta("assign bundle", err)
		}
	}
}

// rendezvous ranks brokers for a bundle, so assigners that see equal
// counts pick the same broker and bundles spread evenly.
func rendezvous(bd Bundle, broker string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(bd.String()))
	h.Write([]byte{0})
	h.Write([]byte(broker))
	return fmix32(h.Sum32())
}

// checkOwned returns nil if this broker owns the partition's bundle (or
// ownership is off), else a *NotOwnerError. A bundle assigned to this
// broker by another one's lookup is found in the metadata store; an
// unowned bundle is assigned, possibly to this broker.
func (b *Broker) checkOwned(ctx context.Context, name TopicName, index int32) error {
	o := b.ownership()
	if o == nil {
		return nil
	}
	bd, err := b.BundleOf(ctx, name, index)
	if err != nil {
		return err
	}
	o.mu.Lock()
	st, mine := o.mu.owned[bd]
	draining, lease := o.mu.draining, o.mu.lease
	o.mu.Unlock()
	switch {
	case draining || (mine && st.unloading) || lease == metadata.NoLease:
		return &NotOwnerError{Bundle: bd}
	case mine:
		return nil
	}
	e, ok, err := b.cat.Bundles.Get(ctx, bd.catName())
	if err != nil {
		return wrapMeta("read bundle", err)
	}
	var owner Owner
	switch {
	case ok && e.Value.GetBroker() == o.id && e.Lease == lease:
		owner.Self = true
	case ok:
		if owner, err = b.brokerOwner(ctx, e.Value.GetBroker()); err != nil {
			return err
		}
		owner.Self = false // the key of a previous run of ours, held by its lease until revoked
	default:
		if owner, err = o.assign(ctx, bd, ""); err != nil {
			return err
		}
	}
	if !owner.Self {
		return &NotOwnerError{Bundle: bd, Owner: owner}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.mu.draining || o.mu.lease != lease {
		return &NotOwnerError{Bundle: bd}
	}
	if st, ok := o.mu.owned[bd]; ok && st.unloading {
		return &NotOwnerError{Bundle: bd}
	}
	if _, ok := o.mu.owned[bd]; !ok {
		o.mu.owned[bd] = &ownedBundle{}
		o.log.Info("bundle acquired", "bundle", bd.String())
	}
	return nil
}

// CheckOwner is checkOwned for protocol adapters: nil if this broker
// serves the partition, else a *NotOwnerError naming the owner.
func (b *Broker) CheckOwner(ctx context.Context, name TopicName, index int32) error {
	if err := b.checkOwned(ctx, name, index); err != nil {
		return err
	}
	return nil
}

// movedErr turns ErrClosed from a partition closed because its bundle
// moved (or the broker is draining) into a *NotOwnerError, so clients
// look the partition up again instead of failing.
func (b *Broker) movedErr(name TopicName, index int32, err error) error {
	o := b.ownership()
	if o == nil || !errors.Is(err, ErrClosed) {
		return err
	}
	bd, ok := o.bundleOf(name, index)
	if !ok {
		return err
	}
	o.mu.Lock()
	st, mine := o.mu.owned[bd]
	draining := o.mu.draining
	o.mu.Unlock()
	if draining || !mine || st.unloading {
		return &NotOwnerError{Bundle: bd}
	}
	return err
}

// bundleOf returns the bundle of a partition, if its namespace's layout
// is known.
func (o *ownership) bundleOf(name TopicName, index int32) (Bundle, bool) {
	o.mu.Lock()
	n, ok := o.mu.layouts[name.NamespaceKey()]
	o.mu.Unlock()
	if !ok {
		return Bundle{}, false
	}
	return BundleFor(name.NamespaceKey(), n, PartitionHash(name, index)), true
}

// claimedErr is the error of a load that lost the partition's row to
// another broker's load (err: the metadata's conflict). With ownership it
// is a *NotOwnerError, whatever this broker believes of the bundle: the
// other broker holds it now, or this one woke from a pause and has yet to
// learn that its lease expired; loading again would take the partition
// back from its owner (both fenced in turn). Clients look it up again.
// Without ownership (one broker) it is ErrClosed: load it again.
func (b *Broker) claimedErr(name TopicName, index int32, err error) error {
	if o := b.ownership(); o != nil {
		if bd, ok := o.bundleOf(name, index); ok {
			return &NotOwnerError{Bundle: bd}
		}
	}
	return fmt.Errorf("%w: %s-%d was claimed by another load: %w", ErrClosed, name, index, err)
}

// UnloadBundle moves a bundle this broker owns: it stops serving it,
// closes its loaded partitions (flushing their cursors), releases the
// bundle and assigns it again, to another broker if there is one. It
// returns the new owner. A bundle owned by another broker is a
// *NotOwnerError naming it; an unowned one is left alone (zero Owner).
func (b *Broker) UnloadBundle(ctx context.Context, bd Bundle) (Owner, error) {
	o := b.ownership()
	if o == nil {
		return Owner{}, fmt.Errorf("%w: this broker does not take part in bundle ownership", ErrInvalidArgument)
	}
	e, ok, err := b.cat.Bundles.Get(ctx, bd.catName())
	if err != nil {
		return Owner{}, wrapMeta("read bundle", err)
	}
	if !ok {
		return Owner{}, nil
	}
	if e.Value.GetBroker() != o.id {
		owner, err := b.brokerOwner(ctx, e.Value.GetBroker())
		if err != nil {
			return Owner{}, err
		}
		return Owner{}, &NotOwnerError{Bundle: bd, Owner: owner}
	}
	start := time.Now()
	o.mu.Lock()
	o.mu.owned[bd] = &ownedBundle{unloading: true}
	o.mu.Unlock()
	n := b.unloadMatching(func(name TopicName, index int32) bool {
		return name.NamespaceKey() == bd.Namespace && bd.Contains(PartitionHash(name, index))
	})
	err = b.cat.Bundles.Delete(ctx, bd.catName(), e.Version)
	o.mu.Lock()
	delete(o.mu.owned, bd)
	o.mu.Unlock()
	if err != nil && !errors.Is(err, catalog.ErrNotFound) && !errors.Is(err, catalog.ErrConflict) {
		return Owner{}, wrapMeta("release bundle", err)
	}
	owner, err := o.assign(ctx, bd, o.id)
	if err != nil {
		return Owner{}, err
	}
	o.log.Info("bundle unloaded", "bundle", bd.String(), "partitions", n, "new_owner", owner.ID, "took", time.Since(start))
	return owner, nil
}

// unloadMatching closes the loaded partitions match selects (waiting for
// those being loaded) and returns how many it closed.
func (b *Broker) unloadMatching(match func(TopicName, int32) bool) int {
	b.mu.Lock()
	var slots []*partitionSlot
	for k, s := range b.mu.partitions {
		if match(k.topic, k.index) {
			slots = append(slots, s)
		}
	}
	b.mu.Unlock()
	n := 0
	for _, s := range slots {
		<-s.ready
		if s.p != nil {
			b.unload(s.p)
			n++
		}
	}
	return n
}

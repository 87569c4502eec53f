package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/metadata"
	"github.com/magnetar-mq/magnetar/metadata/catalog"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

// defaultFlushTimeout bounds cursor persistence done on close paths.
const defaultFlushTimeout = 10 * time.Second

// Broker serves topics: it owns the partitions it has loaded, assigns
// offsets to what is produced, stores it on the segment store and
// dispatches it to subscriptions. It keeps no durable state of its own.
type Broker struct {
	cfg     Config
	log     *slog.Logger
	cat     *catalog.Catalog // the metadata store's typed view
	shards  bookie.Router    // the segment store's shards
	metrics *metrics
	pol     *policyState  // policy cache and publish rate limiters
	pidKey  producerIDKey // signs producer IDs (producerid.go)
	// decompressing is the budget of bytes that validating compressed
	// batches may hold at once (Config.DecompressBudgetBytes).
	decompressing *semaphore.Weighted

	stop chan struct{} // closed by Close
	wg   sync.WaitGroup

	// Lock order: Broker.mu before partition.mu before subscription.mu.
	mu struct {
		sync.Mutex
		closed     bool
		partitions map[partitionKey]*partitionSlot
		own        *ownership // nil until StartOwnership: the broker owns everything
	}
}

type partitionKey struct {
	topic TopicName
	index int32
}

// partitionSlot lets one goroutine load a partition while others wait for
// it, without holding Broker.mu during the load.
type partitionSlot struct {
	ready chan struct{} // closed when p or err is set
	p     *partition
	err   error
}

// New returns a broker over the given metadata store and the segment
// store's shards. reg may be nil.
func New(cfg Config, meta metadata.Store, shards bookie.Router, log *slog.Logger, reg prometheus.Registerer) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Broker{
		cfg:     cfg,
		log:     log.With("component", "broker"),
		cat:     catalog.New(meta),
		shards:  shards,
		metrics: newMetrics(reg),
		stop:    make(chan struct{}),

		decompressing: semaphore.NewWeighted(cfg.DecompressBudgetBytes),
	}
	b.mu.partitions = make(map[partitionKey]*partitionSlot)
	b.startPolicies()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.flushCursorsLoop()
	}()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.policyLoop() // retention, TTL, backlog eviction, roll by age (retention.go)
	}()
	if cfg.IdleTimeout > 0 {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.unloadIdleLoop()
		}()
	}
	return b, nil
}

// Close unloads every partition (waiting for in-flight appends to finish),
// persists every cursor and stops the broker's goroutines. With ownership
// it first deletes its registration (no bundle is assigned to it any
// more) and last revokes its lease, which frees its bundles: their new
// owners find every cursor flushed.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.mu.closed {
		b.mu.Unlock()
		return nil
	}
	own := b.mu.own
	b.mu.Unlock()
	if own != nil {
		own.drain()
	}
	b.mu.Lock()
	b.mu.closed = true
	slots := make([]*partitionSlot, 0, len(b.mu.partitions))
	for _, s := range b.mu.partitions {
		slots = append(slots, s)
	}
	b.mu.Unlock()
	close(b.stop)

	var errs []error
	for _, s := range slots {
		<-s.ready
		if s.p != nil {
			errs = append(errs, s.p.close())
		}
	}
	if own != nil {
		own.close()
	}
	b.wg.Wait()
	return errors.Join(errs...)
}

// ParseTopic parses a user-supplied topic name with the broker's default
// namespace.
func (b *Broker) ParseTopic(s string) (TopicName, error) {
	return ParseTopicName(s, b.cfg.DefaultNamespace)
}

// partitionFor returns the loaded partition, loading it (and taking over
// its ownership) on first use.
func (b *Broker) partitionFor(ctx context.Context, name TopicName, index int32) (*partition, error) {
	key := partitionKey{name, index}
	for {
		b.mu.Lock()
		if b.mu.closed {
			own := b.mu.own
			b.mu.Unlock()
			if own != nil { // a clean shutdown: the partition moves
				return nil, &NotOwnerError{}
			}
			return nil, ErrClosed
		}
		s, ok := b.mu.partitions[key]
		if !ok {
			s = &partitionSlot{ready: make(chan struct{})}
			b.mu.partitions[key] = s
			b.mu.Unlock()
			// Checked with the slot in place, so an unload of the bundle
			// that starts after the check waits for this load.
			s.err = b.checkOwned(ctx, name, index)
			if s.err == nil {
				s.p, s.err = b.loadPartition(ctx, name, index)
			}
			if s.err != nil {
				b.mu.Lock()
				delete(b.mu.partitions, key)
				b.mu.Unlock()
			}
			close(s.ready)
			if s.p != nil {
				s.p.touch()
			}
			return s.p, s.err
		}
		b.mu.Unlock()
		select {
		case <-s.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if s.err != nil {
			continue // the loader failed; try again ourselves
		}
		if s.p.failedErr() != nil {
			b.unload(s.p)
			continue
		}
		s.p.touch()
		return s.p, nil
	}
}

// unload removes a failed or deleted partition from the broker and closes it.
func (b *Broker) unload(p *partition) {
	key := partitionKey{p.name, p.index}
	b.mu.Lock()
	if s, ok := b.mu.partitions[key]; ok && s.p == p {
		delete(b.mu.partitions, key)
	}
	b.mu.Unlock()
	if err := p.close(); err != nil {
		b.log.Warn("closing partition", "topic", p.name.String(), "partition", p.index, "err", err)
	}
}

func (b *Broker) loadedPartitions() []*partition {
	b.mu.Lock()
	defer b.mu.Unlock()
	ps := make([]*partition, 0, len(b.mu.partitions))
	for _, s := range b.mu.partitions {
		select {
		case <-s.ready:
			if s.p != nil {
				ps = append(ps, s.p)
			}
		default:
		}
	}
	return ps
}

// flushCursorsLoop persists dirty cursors every CursorFlushInterval.
func (b *Broker) flushCursorsLoop() {
	t := time.NewTicker(b.cfg.CursorFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), defaultFlushTimeout)
		for _, p := range b.loadedPartitions() {
			if err := p.flushCursors(ctx); err != nil {
				b.log.Warn("persisting cursors", "topic", p.name.String(), "partition", p.index, "err", err)
			}
		}
		cancel()
	}
}

// segmentStore returns the client of the shard holding seg.
func (b *Broker) segmentStore(ctx context.Context, seg *catalogpb.Segment) (bookie.Client, error) {
	c, err := b.shards.Shard(ctx, seg.GetShard())
	if err != nil {
		return nil, fmt.Errorf("broker: segment %d: %w", seg.GetId(), err)
	}
	return c, nil
}

func wrapMeta(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("broker: %s: %w", op, err)
}

package registry

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/metadata/catalog"
)

// ErrNoShard means no shard can take a new segment: none is registered
// active with a leader that has reported.
var ErrNoShard = fmt.Errorf("%w: no active shard with a live leader to place a segment on", bookie.ErrUnknownShard)

// Directory is a bookie.Router over the shards registered in the
// metadata service; see the package documentation. It is safe for
// concurrent use.
type Directory struct {
	cat     *catalog.Catalog
	conns   *bookie.Conns
	log     *slog.Logger
	refresh time.Duration

	refreshMu sync.Mutex // one refresh at a time; taken before mu
	mu        struct {
		sync.Mutex
		shards    map[string]*dirShard
		refreshed time.Time
	}
}

var _ bookie.Router = (*Directory)(nil)

type dirShard struct {
	info   ShardInfo
	addrs  []string
	client *bookie.RemoteClient
	// placed counts the segments this Directory placed on the shard since
	// the last refresh: load its leader has not reported yet.
	placed int64
}

// NewDirectory returns a Directory reading cat, whose shard clients share
// conns (the caller closes it after the Directory's last use). It reads
// the registrations again when they are older than refresh (0: the
// registrar's DefaultReportInterval).
func NewDirectory(cat *catalog.Catalog, conns *bookie.Conns, refresh time.Duration, log *slog.Logger) *Directory {
	if refresh <= 0 {
		refresh = DefaultReportInterval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Directory{cat: cat, conns: conns, refresh: refresh, log: log.With("component", "shard-directory")}
	d.mu.shards = map[string]*dirShard{}
	return d
}

// Shard implements bookie.Router. A known shard's client is returned
// without reading anything (reads call this; Place keeps the directory
// fresh); a shard it does not know yet makes it read the registrations.
func (d *Directory) Shard(ctx context.Context, id string) (bookie.Client, error) {
	if c := d.client(id); c != nil {
		return c, nil
	}
	if err := d.refreshIfStale(ctx, true); err != nil {
		return nil, err
	}
	if c := d.client(id); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("%w: %q is not registered", bookie.ErrUnknownShard, id)
}

func (d *Directory) client(id string) bookie.Client {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.mu.shards[id]; ok {
		return s.client
	}
	return nil
}

// Place implements bookie.Router: the active shard with a reporting leader
// and the fewest open segments (counting those placed since the last
// refresh), then the fewest bytes, then the smallest ID.
func (d *Directory) Place(ctx context.Context) (string, error) {
	if err := d.refreshIfStale(ctx, false); err != nil {
		return "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var best *dirShard
	for _, s := range d.mu.shards {
		if s.info.State != "active" || s.info.Leader == "" {
			continue
		}
		if best == nil || compareLoad(s, best) < 0 {
			best = s
		}
	}
	if best == nil {
		return "", ErrNoShard
	}
	best.placed++
	return best.info.ID, nil
}

func compareLoad(a, b *dirShard) int {
	return cmp.Or(
		cmp.Compare(a.info.Usage.OpenSegments+a.placed, b.info.Usage.OpenSegments+b.placed),
		cmp.Compare(a.info.Usage.Bytes, b.info.Usage.Bytes),
		cmp.Compare(a.info.ID, b.info.ID))
}

// refreshIfStale reads the registrations if they are older than the
// refresh interval, or at once if force.
func (d *Directory) refreshIfStale(ctx context.Context, force bool) error {
	stale := func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return force || time.Since(d.mu.refreshed) >= d.refresh
	}
	if !stale() {
		return nil
	}
	d.refreshMu.Lock()
	defer d.refreshMu.Unlock()
	if !force && !stale() { // another caller refreshed meanwhile
		return nil
	}
	shards, err := ListShards(ctx, d.cat)
	if err != nil {
		return fmt.Errorf("registry: reading the shards: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	next := make(map[string]*dirShard, len(shards))
	for _, info := range shards {
		addrs := info.addrs()
		if len(addrs) == 0 {
			continue // recorded without addresses: unreachable
		}
		s := d.mu.shards[info.ID]
		if s == nil || !slices.Equal(s.addrs, addrs) {
			// A client in use keeps working with the old addresses; new
			// calls get the new one.
			s = &dirShard{addrs: addrs, client: d.conns.Shard(info.ID, addrs)}
			d.log.Info("shard found", "shard", info.ID, "replicas", addrs)
		}
		s.info, s.placed = info, 0
		next[info.ID] = s
	}
	d.mu.shards = next
	d.mu.refreshed = time.Now()
	return nil
}

package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/metadata"
	"github.com/magnetar-mq/magnetar/metadata/catalog"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

// ErrMembership means a shard's stored members differ from the ones a
// bookie was started with: two different groups claim one shard ID.
var ErrMembership = errors.New("registry: shard membership differs from the stored one")

// Defaults of Config.
const (
	DefaultReportInterval = 5 * time.Second
	DefaultTTL            = 15 * time.Second
)

// Replica is one shard replica as the Registrar sees it (a *bookie.Shard).
type Replica interface {
	Status() bookie.ShardStatus
	Usage(ctx context.Context) (bookie.Usage, error)
}

// HostedShard is a shard this bookie hosts a replica of.
type HostedShard struct {
	ID string
	// Members maps every member's bookie ID to its gRPC address, this
	// bookie included.
	Members map[string]string
	Replica Replica
}

// Config configures a Registrar.
type Config struct {
	// BookieID is this process's bookie ID: its Raft server ID in every
	// shard it hosts.
	BookieID string
	// GRPCAddr and RaftAddr are where clients and the other replicas
	// reach it.
	GRPCAddr, RaftAddr string
	Version            string
	// ReportInterval is how often the registration is refreshed; TTL is
	// the lease's time to live, after which a silent bookie's row goes.
	ReportInterval, TTL time.Duration
}

// Registrar keeps a bookie's registration alive; see the package
// documentation.
type Registrar struct {
	cat     *catalog.Catalog
	cfg     Config
	shards  []HostedShard
	log     *slog.Logger
	started time.Time

	cancel context.CancelFunc
	wg     sync.WaitGroup
	lease  metadata.LeaseID // owned by run; read by Close after run returns
}

// Start records the hosted shards in the catalog (creating their rows, or
// checking them) and starts keeping the bookie's registration alive until
// Close. It fails with ErrMembership if a shard row names other members.
func Start(ctx context.Context, cat *catalog.Catalog, cfg Config, shards []HostedShard, log *slog.Logger) (*Registrar, error) {
	if cfg.BookieID == "" {
		return nil, fmt.Errorf("%w: registry: no bookie ID", bookie.ErrInvalidConfig)
	}
	if cfg.ReportInterval <= 0 {
		cfg.ReportInterval = DefaultReportInterval
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Registrar{cat: cat, cfg: cfg, shards: shards, log: log.With("component", "bookie-registry"), started: time.Now()}
	for _, s := range shards {
		if err := r.recordShard(ctx, s); err != nil {
			return nil, err
		}
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	r.wg.Go(func() { r.run(runCtx) })
	return r, nil
}

// recordShard creates the shard's row, or checks its members and updates
// this bookie's address in it.
func (r *Registrar) recordShard(ctx context.Context, s HostedShard) error {
	members := slices.Sorted(maps.Keys(s.Members))
	for {
		e, ok, err := r.cat.Shards.Get(ctx, s.ID)
		if err != nil {
			return fmt.Errorf("registry: shard %s: %w", s.ID, err)
		}
		if !ok {
			row := &catalogpb.Shard{Members: members, State: catalogpb.ShardState_SHARD_ACTIVE,
				CreatedUnixMs: time.Now().UnixMilli(), GrpcAddrs: s.Members}
			_, err := r.cat.Shards.Create(ctx, s.ID, row)
			if errors.Is(err, catalog.ErrExists) {
				continue // another member was first: check its row
			}
			if err != nil {
				return fmt.Errorf("registry: creating shard %s: %w", s.ID, err)
			}
			r.log.Info("shard recorded", "shard", s.ID, "members", members)
			return nil
		}
		row := e.Value
		if !slices.Equal(slices.Sorted(slices.Values(row.GetMembers())), members) {
			return fmt.Errorf("%w: shard %s has members %v, this bookie was started with %v", ErrMembership, s.ID, row.GetMembers(), members)
		}
		if maps.Equal(row.GetGrpcAddrs(), s.Members) {
			return nil
		}
		// Addresses may change across restarts: take the new ones.
		row.GrpcAddrs = s.Members
		_, err = r.cat.Shards.Update(ctx, s.ID, row, e.Version)
		if errors.Is(err, catalog.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("registry: updating shard %s: %w", s.ID, err)
		}
		return nil
	}
}

// run registers the bookie and refreshes its row every ReportInterval;
// after a lost lease (the metadata service was unreachable for a TTL) it
// registers again.
func (r *Registrar) run(ctx context.Context) {
	t := time.NewTicker(r.cfg.ReportInterval)
	defer t.Stop()
	var version int64
	for {
		var err error
		if r.lease == metadata.NoLease {
			r.lease, version, err = r.cat.Bookies.RegisterWithTTL(ctx, r.cfg.BookieID, r.report(ctx), r.cfg.TTL)
			if err != nil {
				r.lease = metadata.NoLease
				// A restarted bookie finds its previous row until the old
				// lease expires: retry until it has.
				r.log.Debug("registering the bookie", "err", err)
			} else {
				r.log.Info("bookie registered", "bookie", r.cfg.BookieID, "shards", len(r.shards))
			}
		} else if _, err = r.cat.Store().KeepAlive(ctx, r.lease); err == nil {
			version, err = r.cat.Bookies.Update(ctx, r.cfg.BookieID, r.report(ctx), version, r.lease)
		}
		switch {
		case err == nil || ctx.Err() != nil || r.lease == metadata.NoLease:
		case errors.Is(err, metadata.ErrLeaseNotFound) || errors.Is(err, catalog.ErrConflict) || errors.Is(err, catalog.ErrNotFound):
			// The lease expired (the metadata service was out of reach
			// for a TTL), or the row changed under us: register anew.
			r.log.Warn("the bookie's registration was lost; registering again", "err", err)
			r.lease = metadata.NoLease
		default:
			// Keep the lease: it outlives a few failed refreshes.
			r.log.Warn("refreshing the bookie's registration", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// report is the bookie's row as of now.
func (r *Registrar) report(ctx context.Context) *catalogpb.Bookie {
	b := &catalogpb.Bookie{GrpcAddr: r.cfg.GRPCAddr, RaftAddr: r.cfg.RaftAddr, Version: r.cfg.Version,
		StartedUnixMs: r.started.UnixMilli(), UpdatedUnixMs: time.Now().UnixMilli()}
	for _, s := range r.shards {
		st := s.Replica.Status()
		rep := &catalogpb.ShardReplica{Shard: s.ID, Leader: st.Leader, LeaderId: st.LeaderID, AppliedIndex: st.AppliedIndex}
		if u, err := s.Replica.Usage(ctx); err == nil {
			rep.Segments, rep.OpenSegments, rep.Bytes = u.Segments, u.OpenSegments, u.Bytes
		} else {
			r.log.Warn("reading the shard's usage", "shard", s.ID, "err", err)
		}
		b.Shards = append(b.Shards, rep)
	}
	return b
}

// Close stops refreshing and revokes the registration, so the bookie's
// row goes at once rather than after its TTL.
func (r *Registrar) Close() error {
	r.cancel()
	r.wg.Wait()
	if r.lease == metadata.NoLease {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.cat.Store().Revoke(ctx, r.lease); err != nil && !errors.Is(err, metadata.ErrLeaseNotFound) {
		return fmt.Errorf("registry: revoking the bookie's lease: %w", err)
	}
	return nil
}

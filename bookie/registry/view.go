package registry

import (
	"context"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/magnetar-mq/magnetar/metadata/catalog"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

// ShardInfo is a shard as the metadata service knows it: its row and what
// its live members report.
type ShardInfo struct {
	ID    string `json:"id"`
	State string `json:"state"` // active, read-only, draining
	// Leader is the member that reports leading the shard, "" if none does.
	Leader   string         `json:"leader"`
	Replicas []ReplicaInfo  `json:"replicas"`
	Usage    ShardUsageInfo `json:"usage"`
}

// ReplicaInfo is one member of a shard.
type ReplicaInfo struct {
	Bookie   string `json:"bookie"`
	GRPCAddr string `json:"grpc_addr"`
	// Live is whether the member's bookie is registered (its lease holds).
	Live         bool   `json:"live"`
	Leader       bool   `json:"leader"`
	AppliedIndex uint64 `json:"applied_index"`
}

// ShardUsageInfo is the shard's usage as its leader last reported it
// (zero while no leader has reported).
type ShardUsageInfo struct {
	Segments     int64 `json:"segments"`
	OpenSegments int64 `json:"open_segments"`
	Bytes        int64 `json:"bytes"`
}

// BookieInfo is a registered (live) bookie.
type BookieInfo struct {
	ID            string   `json:"id"`
	GRPCAddr      string   `json:"grpc_addr"`
	RaftAddr      string   `json:"raft_addr"`
	Version       string   `json:"version"`
	StartedUnixMs int64    `json:"started_unix_ms"`
	UpdatedUnixMs int64    `json:"updated_unix_ms"`
	Shards        []string `json:"shards"`
	Leads         []string `json:"leads"`
}

// ListBookies returns the registered bookies, by ID.
func ListBookies(ctx context.Context, cat *catalog.Catalog) ([]BookieInfo, error) {
	bookies, err := all(ctx, cat.Bookies.List)
	if err != nil {
		return nil, err
	}
	out := make([]BookieInfo, 0, len(bookies))
	for _, e := range bookies {
		b := BookieInfo{ID: e.Name, GRPCAddr: e.Value.GetGrpcAddr(), RaftAddr: e.Value.GetRaftAddr(), Version: e.Value.GetVersion(),
			StartedUnixMs: e.Value.GetStartedUnixMs(), UpdatedUnixMs: e.Value.GetUpdatedUnixMs(), Shards: []string{}, Leads: []string{}}
		for _, r := range e.Value.GetShards() {
			b.Shards = append(b.Shards, r.GetShard())
			if r.GetLeader() {
				b.Leads = append(b.Leads, r.GetShard())
			}
		}
		out = append(out, b)
	}
	return out, nil
}

// ListShards returns every shard with its members' reports, by ID.
func ListShards(ctx context.Context, cat *catalog.Catalog) ([]ShardInfo, error) {
	shards, err := all(ctx, cat.Shards.List)
	if err != nil {
		return nil, err
	}
	bookies, err := all(ctx, cat.Bookies.List)
	if err != nil {
		return nil, err
	}
	// reports[shard][bookie] is that bookie's report on that shard.
	reports := map[string]map[string]*catalogpb.ShardReplica{}
	for _, b := range bookies {
		for _, r := range b.Value.GetShards() {
			if reports[r.GetShard()] == nil {
				reports[r.GetShard()] = map[string]*catalogpb.ShardReplica{}
			}
			reports[r.GetShard()][b.Name] = r
		}
	}
	out := make([]ShardInfo, 0, len(shards))
	for _, e := range shards {
		s := ShardInfo{ID: e.Name, State: stateName(e.Value.GetState()), Replicas: []ReplicaInfo{}}
		for _, m := range slices.Sorted(slices.Values(e.Value.GetMembers())) {
			r := ReplicaInfo{Bookie: m, GRPCAddr: e.Value.GetGrpcAddrs()[m]}
			if rep, ok := reports[e.Name][m]; ok {
				r.Live, r.Leader, r.AppliedIndex = true, rep.GetLeader(), rep.GetAppliedIndex()
				if rep.GetLeader() {
					s.Leader = m
					s.Usage = ShardUsageInfo{Segments: rep.GetSegments(), OpenSegments: rep.GetOpenSegments(), Bytes: rep.GetBytes()}
				}
			}
			s.Replicas = append(s.Replicas, r)
		}
		out = append(out, s)
	}
	return out, nil
}

// addrs returns the members' known gRPC addresses, by bookie ID.
func (s ShardInfo) addrs() []string {
	var out []string
	for _, r := range s.Replicas {
		if r.GRPCAddr != "" {
			out = append(out, r.GRPCAddr)
		}
	}
	return out
}

func stateName(s catalogpb.ShardState) string {
	switch s {
	case catalogpb.ShardState_SHARD_ACTIVE:
		return "active"
	case catalogpb.ShardState_SHARD_READ_ONLY:
		return "read-only"
	case catalogpb.ShardState_SHARD_DRAINING:
		return "draining"
	}
	return "unknown"
}

// all reads every page of a listing.
func all[K any, M proto.Message](ctx context.Context, list func(context.Context, catalog.Page) (catalog.List[K, M], error)) ([]catalog.Entry[K, M], error) {
	var out []catalog.Entry[K, M]
	page := catalog.Page{}
	for {
		l, err := list(ctx, page)
		if err != nil {
			return nil, err
		}
		out = append(out, l.Entries...)
		if l.Next == "" {
			return out, nil
		}
		page.After = l.Next
	}
}

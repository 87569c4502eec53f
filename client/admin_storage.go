package client

import (
	"context"
	"net/http"
)

// BookieInfo is a registered bookie (storage process), as the admin API
// lists it.
type BookieInfo struct {
	ID            string   `json:"id"`
	GRPCAddr      string   `json:"grpc_addr"`
	RaftAddr      string   `json:"raft_addr"`
	Version       string   `json:"version"`
	StartedUnixMs int64    `json:"started_unix_ms"`
	UpdatedUnixMs int64    `json:"updated_unix_ms"`
	Shards        []string `json:"shards"` // the shards it hosts a replica of
	Leads         []string `json:"leads"`  // the shards whose leader it is
}

// ShardInfo is a storage shard: its state, replicas and usage.
type ShardInfo struct {
	ID       string        `json:"id"`
	State    string        `json:"state"`
	Leader   string        `json:"leader"` // bookie ID; "" when none reports leading
	Replicas []ReplicaInfo `json:"replicas"`
	Usage    ShardUsage    `json:"usage"`
}

// ReplicaInfo is one member of a shard.
type ReplicaInfo struct {
	Bookie       string `json:"bookie"`
	GRPCAddr     string `json:"grpc_addr"`
	Live         bool   `json:"live"`
	Leader       bool   `json:"leader"`
	AppliedIndex uint64 `json:"applied_index"`
}

// ShardUsage is what a shard stores, as its leader last reported.
type ShardUsage struct {
	Segments     int64 `json:"segments"`
	OpenSegments int64 `json:"open_segments"`
	Bytes        int64 `json:"bytes"`
}

// ListBookies returns the registered bookies.
func (a *Admin) ListBookies(ctx context.Context) ([]BookieInfo, error) {
	var out []BookieInfo
	err := a.do(ctx, http.MethodGet, "/admin/v1/bookies", nil, &out)
	return out, err
}

// ListShards returns the storage shards.
func (a *Admin) ListShards(ctx context.Context) ([]ShardInfo, error) {
	var out []ShardInfo
	err := a.do(ctx, http.MethodGet, "/admin/v1/shards", nil, &out)
	return out, err
}

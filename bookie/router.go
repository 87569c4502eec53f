package bookie

import (
	"context"
	"fmt"
)

// Router is how a writer reaches the segment store's shards: the client
// of the shard a segment is on, and a shard for a new segment. The
// registry package's Directory routes over the shards registered in the
// metadata service; OneShard routes to a single shard.
type Router interface {
	// Shard returns the client of the shard with the given ID; the empty
	// ID names the shard of a single-shard store (segments recorded
	// without a shard). An unknown shard is ErrUnknownShard.
	Shard(ctx context.Context, id string) (Client, error)
	// Place picks the shard for a new segment.
	Place(ctx context.Context) (id string, err error)
}

// OneShard returns the Router of a store with one shard, c, whose ID is
// id: it places every segment there and also answers for the empty ID.
func OneShard(id string, c Client) Router { return oneShard{id, c} }

type oneShard struct {
	id string
	c  Client
}

func (o oneShard) Shard(_ context.Context, id string) (Client, error) {
	if id != o.id && id != "" {
		return nil, fmt.Errorf("%w: %q (the only shard is %q)", ErrUnknownShard, id, o.id)
	}
	return o.c, nil
}

func (o oneShard) Place(context.Context) (string, error) { return o.id, nil }

package broker

import (
	"context"

	"github.com/magnetar-mq/magnetar/bookie/registry"
)

// Bookies returns the bookies registered in the metadata service, by ID.
func (b *Broker) Bookies(ctx context.Context) ([]registry.BookieInfo, error) {
	l, err := registry.ListBookies(ctx, b.cat)
	return l, wrapMeta("list bookies", err)
}

// Shards returns the segment store's shards with their members' reports,
// by ID.
func (b *Broker) Shards(ctx context.Context) ([]registry.ShardInfo, error) {
	l, err := registry.ListShards(ctx, b.cat)
	return l, wrapMeta("list shards", err)
}

package catalog

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/magnetar-mq/magnetar/metadata"
)

// secretPrefix holds the cluster's secrets, beside the segment ID counter
// under "i/": random keys every broker shares, made by the first one that
// needs each.
const secretPrefix = "i/secret/"

// secretBytes is the size of a cluster secret.
const secretBytes = 32

// Secret returns the cluster secret called name, creating it (32 random
// bytes) if no broker has yet. Every caller gets the same bytes.
func (c *Catalog) Secret(ctx context.Context, name string) ([]byte, error) {
	if err := checkPart("secret name", name); err != nil {
		return nil, err
	}
	key := secretPrefix + name
	for {
		kv, ok, err := c.s.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		if ok {
			if len(kv.Value) != secretBytes {
				return nil, fmt.Errorf("%w: secret %s has %d bytes", ErrCorrupt, name, len(kv.Value))
			}
			return kv.Value, nil
		}
		b := make([]byte, secretBytes)
		_, _ = rand.Read(b) // never fails (crypto/rand)
		_, err = c.s.Put(ctx, key, b, 0)
		if errors.Is(err, metadata.ErrVersionMismatch) {
			continue // another broker made it first: read theirs
		}
		if err != nil {
			return nil, err
		}
		return b, nil
	}
}

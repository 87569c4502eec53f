package broker

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/magnetar-mq/magnetar/internal/auth"
)

// Producer IDs are capabilities. An idempotent producer's batches are
// de-duplicated by its ID (dedup.go), so a client that could name another
// producer's ID could make that producer's next batches look like
// duplicates (answered as stored, never stored) or fence it. An ID is
// therefore issued to one role and cannot be guessed: its high 31 bits are
// a cluster-unique counter (the metadata store's segment-ID counter), its
// low 32 bits a MAC of the counter and the role under a cluster secret
// (catalog.Secret) that only brokers know. Every Kafka batch that names a
// producer ID is checked (CheckProducerID); a native producer that
// presents an ID not issued to its role is given a new one.
//
// The counter wraps after 2^31 IDs (IDs and segments share it); an ID is
// unique among those issued since, which is far longer than a producer's
// state is kept.

// ErrUnknownProducerID refuses a batch whose producer ID this broker's
// cluster did not issue to the request's role.
var ErrUnknownProducerID = errors.New("broker: producer id not issued to this role")

// producerIDSecret is the name of the cluster secret producer IDs are
// signed with.
const producerIDSecret = "producer-ids"

// producerIDKey is the cluster secret, read once.
type producerIDKey struct {
	mu  sync.Mutex
	key []byte
}

func (b *Broker) producerIDKey(ctx context.Context) ([]byte, error) {
	k := &b.pidKey
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.key == nil {
		key, err := b.cat.Secret(ctx, producerIDSecret)
		if err != nil {
			return nil, wrapMeta("read the producer id key", err)
		}
		k.key = key
	}
	return k.key, nil
}

func producerIDMAC(key []byte, counter uint32, role string) uint32 {
	m := hmac.New(sha256.New, key)
	var c [4]byte
	binary.BigEndian.PutUint32(c[:], counter)
	m.Write(c[:])
	m.Write([]byte(role))
	return binary.BigEndian.Uint32(m.Sum(nil))
}

// NewProducerID returns a producer ID for an idempotent producer (Kafka or
// native), issued to the role of the request in ctx.
func (b *Broker) NewProducerID(ctx context.Context) (int64, error) {
	key, err := b.producerIDKey(ctx)
	if err != nil {
		return 0, err
	}
	n, err := b.cat.NextSegmentID(ctx)
	if err != nil {
		return 0, wrapMeta("allocate producer id", err)
	}
	counter := uint32(n % (1 << 31))
	p, _ := auth.FromContext(ctx)
	return int64(counter)<<32 | int64(producerIDMAC(key, counter, p.Role)), nil
}

// CheckProducerID verifies that id was issued to the role of the request
// in ctx (ErrUnknownProducerID otherwise).
func (b *Broker) CheckProducerID(ctx context.Context, id int64) error {
	key, err := b.producerIDKey(ctx)
	if err != nil {
		return err
	}
	p, _ := auth.FromContext(ctx)
	counter := uint32(id >> 32)
	if id < 0 || id>>63 != 0 || uint32(id) != producerIDMAC(key, counter, p.Role) {
		return fmt.Errorf("%w: %d", ErrUnknownProducerID, id)
	}
	return nil
}

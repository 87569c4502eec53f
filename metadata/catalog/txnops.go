package catalog

import (
	"google.golang.org/protobuf/proto"

	"github.com/magnetar-mq/magnetar/metadata"
)

// Key returns the store key of the record named k, so a caller can build
// one metadata.Txn over records of several kinds (compare one record's
// version, write another), e.g. creating a topic only while its
// namespace's row is unchanged.
func (t *table[K, M]) Key(k K) (string, error) { return t.key(k) }

// PutOp returns a Txn op that writes m as the record named k.
func (t *table[K, M]) PutOp(k K, m M) (metadata.Op, error) {
	key, err := t.key(k)
	if err != nil {
		return metadata.Op{}, err
	}
	val, err := proto.Marshal(m)
	if err != nil {
		return metadata.Op{}, err
	}
	return metadata.PutOp(key, val), nil
}

// Decode decodes a value read from the store (a watch event's, a Txn
// result's) as the record named by key; ok is false when key is not a key
// of this kind of record.
func (t *table[K, M]) Decode(kv metadata.KV) (e Entry[K, M], ok bool, err error) {
	if len(kv.Key) <= len(t.prefix) || kv.Key[:len(t.prefix)] != t.prefix {
		return e, false, nil
	}
	k, ok := t.parse(kv.Key[len(t.prefix):])
	if !ok {
		return e, false, nil
	}
	e, err = t.decode(k, kv)
	return e, err == nil, err
}

// Prefix returns the key prefix of every record of this kind, for a
// metadata.Store.Watch of all of them.
func (t *table[K, M]) Prefix() string { return t.prefix }

// ParseKey returns the name of the record stored under key; ok is false
// when key is not a key of this kind of record.
func (t *table[K, M]) ParseKey(key string) (k K, ok bool) {
	if len(key) <= len(t.prefix) || key[:len(t.prefix)] != t.prefix {
		return k, false
	}
	return t.parse(key[len(t.prefix):])
}

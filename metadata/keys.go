package metadata

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Pebble key layout of the metadata DB. Every FSM prefix sorts before the
// Raft log's, and the FSM's keys are exactly those under fsmPrefixes.
const (
	attachPrefix = "a/" // a/<lease: 8 bytes big-endian><key> -> empty: the key is attached to the lease
	histPrefix   = "h/" // h/<revision: 8 bytes big-endian>   -> the revision's events
	kvPrefix     = "k/" // k/<key>                            -> KV record
	leasePrefix  = "l/" // l/<lease: 8 bytes big-endian>      -> lease record
	metaPrefix   = "m/" // m/<name>                           -> 8 bytes big-endian
	raftPrefix   = "r/" // the Raft log and stable store (internal/raftstore)
)

// fsmPrefixes are the key spans that make up the FSM state: what a snapshot
// holds and what a restore replaces.
var fsmPrefixes = []string{attachPrefix, histPrefix, kvPrefix, leasePrefix, metaPrefix}

var (
	keyApplied   = []byte(metaPrefix + "applied")   // last Raft index applied
	keyRevision  = []byte(metaPrefix + "revision")  // current store revision
	keyCompacted = []byte(metaPrefix + "compacted") // history kept: revisions > this
)

func kvKey(key string) []byte {
	k := make([]byte, 0, len(kvPrefix)+len(key))
	return append(append(k, kvPrefix...), key...)
}

func leaseKey(id LeaseID) []byte {
	return binary.BigEndian.AppendUint64([]byte(leasePrefix), uint64(id))
}

func leaseOfKey(k []byte) (LeaseID, error) {
	if len(k) != len(leasePrefix)+8 {
		return 0, fmt.Errorf("%w: lease key of %d bytes", ErrCorrupt, len(k))
	}
	return LeaseID(binary.BigEndian.Uint64(k[len(leasePrefix):])), nil
}

// attachKey is the index entry that says key is attached to lease id; all
// the keys of one lease are the span attachSpan(id).
func attachKey(id LeaseID, key string) []byte {
	k := make([]byte, 0, len(attachPrefix)+8+len(key))
	k = binary.BigEndian.AppendUint64(append(k, attachPrefix...), uint64(id))
	return append(k, key...)
}

func attachSpan(id LeaseID) []byte {
	return binary.BigEndian.AppendUint64([]byte(attachPrefix), uint64(id))
}

func histKey(rev int64) []byte {
	return binary.BigEndian.AppendUint64([]byte(histPrefix), uint64(rev))
}

func revOfHistKey(k []byte) (int64, error) {
	if len(k) != len(histPrefix)+8 {
		return 0, fmt.Errorf("%w: history key of %d bytes", ErrCorrupt, len(k))
	}
	return int64(binary.BigEndian.Uint64(k[len(histPrefix):])), nil
}

// prefixEnd returns the smallest key greater than every key starting with p
// (p must contain a byte below 0xff, which every prefix used here does).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	panic("metadata: prefixEnd of an all-0xff prefix")
}

func appendUint64Value(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }

// readUint64 reads an 8-byte big-endian value; a missing key reads as 0.
func readUint64(r pebble.Reader, key []byte) (uint64, error) {
	val, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	if len(val) != 8 {
		return 0, fmt.Errorf("%w: %s is %d bytes", ErrCorrupt, key, len(val))
	}
	return binary.BigEndian.Uint64(val), nil
}

// readKV reads one key's record; ok is false when it does not exist.
func readKV(r pebble.Reader, key string) (kv KV, ok bool, err error) {
	val, closer, err := r.Get(kvKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return KV{}, false, nil
	}
	if err != nil {
		return KV{}, false, err
	}
	defer closer.Close()
	kv, err = decodeKVRecord(key, val)
	if err != nil {
		return KV{}, false, fmt.Errorf("key %q: %w", key, err)
	}
	return kv, true, nil
}

package broker

import (
	"slices"
	"strconv"
)

// Key_Shared assignment: a message's key hashes into [0, keyHashRange); a
// consistent-hash ring of consumer points (pointsPerConsumer each) picks
// the consumer owning each hash, so a join or leave moves only the hashes
// next to the points that came or went. A message without a key may go to
// any consumer: nothing orders it.

const (
	keyHashRange      = 1 << 16
	pointsPerConsumer = 64
	// noKeyHash marks a message without a key (outside the hash range).
	noKeyHash = uint32(keyHashRange)
)

// keyHash is the sticky hash of a key: 32-bit FNV-1a folded into the hash
// range.
func keyHash(key []byte) uint32 {
	if len(key) == 0 {
		return noKeyHash
	}
	return fnv32a(key) % keyHashRange
}

func fnv32a(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

type ringPoint struct {
	hash uint32
	c    *Consumer
}

// keyHold says which consumer holds unacknowledged messages of a hash, and
// how many.
type keyHold struct {
	c *Consumer
	n int
}

// keyRing is the Key_Shared state of a dispatcher, guarded by
// subscription.mu.
type keyRing struct {
	points []ringPoint // sorted by hash
	holds  map[uint32]*keyHold
	// replayed counts the replay-list entries of each hash: while a hash
	// has any, a new message of it waits behind them.
	replayed map[uint32]int
}

func newKeyRing() *keyRing {
	return &keyRing{holds: make(map[uint32]*keyHold), replayed: make(map[uint32]int)}
}

// replayAdded and replayRemoved track the replay list's hashes.
func (k *keyRing) replayAdded(hash uint32) {
	if hash != noKeyHash {
		k.replayed[hash]++
	}
}

func (k *keyRing) replayRemoved(hash uint32) {
	if hash == noKeyHash {
		return
	}
	if k.replayed[hash]--; k.replayed[hash] <= 0 {
		delete(k.replayed, hash)
	}
}

// takeableNew is takeable for a message read past the replay list: it
// must also wait for the replay entries of its hash.
func (k *keyRing) takeableNew(c *Consumer, hash uint32) bool {
	return k.takeable(c, hash) && (hash == noKeyHash || k.replayed[hash] == 0)
}

// add places c's points on the ring. Points are derived from the
// consumer's ID, unique in the broker, so equal names do not collide.
func (k *keyRing) add(c *Consumer) {
	var buf []byte
	for i := range pointsPerConsumer {
		buf = strconv.AppendUint(buf[:0], c.id, 10)
		buf = append(buf, '#')
		buf = strconv.AppendInt(buf, int64(i), 10)
		k.points = append(k.points, ringPoint{hash: fnv32a(buf) % keyHashRange, c: c})
	}
	slices.SortStableFunc(k.points, func(a, b ringPoint) int { return int(a.hash) - int(b.hash) })
}

// remove takes c's points off the ring. What c held was handed back by the
// caller, so it holds nothing any more.
func (k *keyRing) remove(c *Consumer) {
	k.points = slices.DeleteFunc(k.points, func(p ringPoint) bool { return p.c == c })
}

// owner is the consumer owning hash: the first point at or after it,
// wrapping around.
func (k *keyRing) owner(hash uint32) *Consumer {
	i, _ := slices.BinarySearchFunc(k.points, hash, func(p ringPoint, h uint32) int { return int(p.hash) - int(h) })
	if i == len(k.points) {
		i = 0
	}
	return k.points[i].c
}

// takeable reports whether c may take a message of hash now: it owns the
// hash and no other consumer still holds messages of it.
func (k *keyRing) takeable(c *Consumer, hash uint32) bool {
	if hash == noKeyHash {
		return true
	}
	if k.owner(hash) != c {
		return false
	}
	h := k.holds[hash]
	return h == nil || h.c == c
}

// hold records that c was handed a message of hash.
func (k *keyRing) hold(c *Consumer, hash uint32) {
	if hash == noKeyHash {
		return
	}
	if h := k.holds[hash]; h != nil {
		h.n++
		return
	}
	k.holds[hash] = &keyHold{c: c, n: 1}
}

// release records that a message of hash is no longer held. It reports
// whether that ended a drain: another consumer owns the hash now and may
// take its messages.
func (k *keyRing) release(hash uint32) bool {
	h := k.holds[hash]
	if h == nil {
		return false
	}
	if h.n--; h.n > 0 {
		return false
	}
	delete(k.holds, hash)
	return len(k.points) > 0 && k.owner(hash) != h.c
}

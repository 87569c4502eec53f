package broker

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/magnetar-mq/magnetar/metadata/catalog"
)

// Bundles cut each namespace's hash space of partition names into ranges.
//
// A partition's hash is FNV-1a (32 bits) of "tenant/namespace/topic/index"
// passed through murmur3's finalizer (FNV alone barely moves the high bits
// when only the last characters differ, and bundles split by the high
// bits), so the partitions of one topic spread over the bundles. A namespace of
// n bundles has them at equal widths: bundle i covers [i*2^32/n,
// (i+1)*2^32/n - 1], the last one ending at 0xffffffff. Every broker must
// compute the same layout, so n comes from the namespace's row
// (catalogpb.Namespace.bundles) or, when that is 0 or the row is missing,
// from Config.DefaultBundles, which must be the same on every broker.

// MaxBundles caps the bundles of one namespace.
const MaxBundles = 1 << 16

// Bundle is one hash range of a namespace, both ends inclusive.
type Bundle struct {
	Namespace string // tenant/namespace
	Start     uint32
	End       uint32
}

// Range is the bundle's range as written in keys and URLs:
// 8 hex digits, '-', 8 hex digits ("00000000-3fffffff").
func (b Bundle) Range() string { return fmt.Sprintf("%08x-%08x", b.Start, b.End) }

// String is tenant/namespace/range.
func (b Bundle) String() string { return b.Namespace + "/" + b.Range() }

// Contains reports whether the hash falls in the bundle.
func (b Bundle) Contains(h uint32) bool { return h >= b.Start && h <= b.End }

func (b Bundle) catName() catalog.BundleName {
	ns, _ := splitNamespace(b.Namespace)
	return catalog.BundleName{Namespace: ns, Start: b.Start, End: b.End}
}

// ParseBundle parses "tenant/namespace" and a range "xxxxxxxx-xxxxxxxx".
func ParseBundle(namespace, rng string) (Bundle, error) {
	if _, err := splitNamespace(namespace); err != nil {
		return Bundle{}, err
	}
	lo, hi, ok := strings.Cut(rng, "-")
	if !ok || len(lo) != 8 || len(hi) != 8 {
		return Bundle{}, fmt.Errorf("%w: bundle range %q: want xxxxxxxx-xxxxxxxx (hex)", ErrInvalidArgument, rng)
	}
	s, err1 := strconv.ParseUint(lo, 16, 32)
	e, err2 := strconv.ParseUint(hi, 16, 32)
	if err1 != nil || err2 != nil || s > e {
		return Bundle{}, fmt.Errorf("%w: bundle range %q", ErrInvalidArgument, rng)
	}
	return Bundle{Namespace: namespace, Start: uint32(s), End: uint32(e)}, nil
}

func splitNamespace(ns string) (catalog.NamespaceName, error) {
	t, n, ok := strings.Cut(ns, "/")
	if !ok || validNamePart(t) != nil || validNamePart(n) != nil {
		return catalog.NamespaceName{}, fmt.Errorf("%w: namespace %q: want tenant/namespace", ErrInvalidArgument, ns)
	}
	return catalog.NamespaceName{Tenant: t, Namespace: n}, nil
}

// PartitionHash is the hash that places a partition in its namespace's
// bundles.
func PartitionHash(name TopicName, index int32) uint32 {
	h := fnv.New32a()
	h.Write([]byte(name.String()))
	h.Write([]byte{'/'})
	h.Write(strconv.AppendInt(nil, int64(index), 10))
	return fmix32(h.Sum32())
}

// KeyHash hashes any other name (a Kafka group ID) into a bundle of its
// namespace.
func KeyHash(key string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return fmix32(h.Sum32())
}

// fmix32 is murmur3's finalizer: every input bit affects every output bit.
func fmix32(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// bundleStart is the first hash of bundle i of n.
func bundleStart(i, n int) uint32 { return uint32((uint64(i) << 32) / uint64(n)) }

// BundleRanges returns the n bundles of a namespace, in hash order.
func BundleRanges(namespace string, n int) []Bundle {
	out := make([]Bundle, n)
	for i := range n {
		end := uint32(0xffffffff)
		if i+1 < n {
			end = bundleStart(i+1, n) - 1
		}
		out[i] = Bundle{Namespace: namespace, Start: bundleStart(i, n), End: end}
	}
	return out
}

// BundleFor returns the bundle of n holding hash h.
func BundleFor(namespace string, n int, h uint32) Bundle {
	i := int((uint64(h) * uint64(n)) >> 32) // floor(h*n/2^32): at most one off
	for i+1 < n && bundleStart(i+1, n) <= h {
		i++
	}
	for i > 0 && bundleStart(i, n) > h {
		i--
	}
	end := uint32(0xffffffff)
	if i+1 < n {
		end = bundleStart(i+1, n) - 1
	}
	return Bundle{Namespace: namespace, Start: bundleStart(i, n), End: end}
}

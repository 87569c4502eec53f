package catalog

import (
	"fmt"
	"strconv"
	"strings"
)

// Key prefixes, one byte and a slash each (see the package doc).
const (
	tenantPrefix    = "t/"
	namespacePrefix = "n/"
	topicPrefix     = "o/"
	partitionPrefix = "p/"
	cursorPrefix    = "c/"
	ackChunkPrefix  = "a/"
	brokerPrefix    = "b/"
	bookiePrefix    = "k/"
	shardPrefix     = "s/"
	bundlePrefix    = "w/"
	groupPrefix     = "g/"
	segmentIDKey    = "i/seg"
)

// NamespaceName names a namespace: tenant/namespace.
type NamespaceName struct {
	Tenant    string
	Namespace string
}

func (n NamespaceName) String() string { return n.Tenant + "/" + n.Namespace }

// TopicName names a topic: tenant/namespace/topic.
type TopicName struct {
	Tenant    string
	Namespace string
	Topic     string
}

func (n TopicName) String() string { return n.Tenant + "/" + n.Namespace + "/" + n.Topic }

// NamespaceName returns the topic's namespace.
func (n TopicName) NamespaceName() NamespaceName { return NamespaceName{n.Tenant, n.Namespace} }

// PartitionName names one partition of a topic.
type PartitionName struct {
	Topic TopicName
	Index int32
}

// CursorName names a subscription's cursor on one partition.
type CursorName struct {
	Partition    PartitionName
	Subscription string
}

// AckChunkName names one chunk of a cursor's individually acknowledged
// offsets: offsets Chunk*65,536 to Chunk*65,536+65,535.
type AckChunkName struct {
	Cursor CursorName
	Chunk  int64
}

// BundleName names one bundle of a namespace: the topic-name hash range
// [Start, End], both inclusive so the last bundle can end at 0xffffffff.
type BundleName struct {
	Namespace NamespaceName
	Start     uint32
	End       uint32
}

// checkPart validates one segment of a key: non-empty, no '/'. Broker-level
// rules (Kafka's character set) are stricter; this is what the key layout
// needs to stay unambiguous.
func checkPart(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalidName, what)
	}
	if strings.IndexByte(s, '/') >= 0 {
		return fmt.Errorf("%w: %s %q contains '/'", ErrInvalidName, what, s)
	}
	return nil
}

func nsPath(n NamespaceName) (string, error) {
	if err := checkPart("tenant", n.Tenant); err != nil {
		return "", err
	}
	if err := checkPart("namespace", n.Namespace); err != nil {
		return "", err
	}
	return n.Tenant + "/" + n.Namespace, nil
}

func topicPath(n TopicName) (string, error) {
	ns, err := nsPath(n.NamespaceName())
	if err != nil {
		return "", err
	}
	if err := checkPart("topic", n.Topic); err != nil {
		return "", err
	}
	return ns + "/" + n.Topic, nil
}

func partitionPath(p PartitionName) (string, error) {
	tp, err := topicPath(p.Topic)
	if err != nil {
		return "", err
	}
	if p.Index < 0 {
		return "", fmt.Errorf("%w: negative partition %d", ErrInvalidName, p.Index)
	}
	return tp + "/" + strconv.Itoa(int(p.Index)), nil
}

// scopePath is the key path of a listing scope: "" for everything, else
// "tenant/" or "tenant/namespace/" (a zero Namespace with a Tenant lists the
// tenant's rows).
func scopePath(n NamespaceName) (string, error) {
	switch {
	case n.Tenant == "" && n.Namespace == "":
		return "", nil
	case n.Namespace == "":
		if err := checkPart("tenant", n.Tenant); err != nil {
			return "", err
		}
		return n.Tenant + "/", nil
	default:
		p, err := nsPath(n)
		return p + "/", err
	}
}

// splitN splits s into exactly n parts at '/', the last taking the rest.
func splitN(s string, n int) ([]string, bool) {
	parts := strings.SplitN(s, "/", n)
	if len(parts) != n {
		return nil, false
	}
	for _, p := range parts {
		if p == "" {
			return nil, false
		}
	}
	return parts, true
}

func parseNamespace(rest string) (NamespaceName, bool) {
	p, ok := splitN(rest, 2)
	if !ok || strings.IndexByte(p[1], '/') >= 0 {
		return NamespaceName{}, false
	}
	return NamespaceName{p[0], p[1]}, true
}

func parseTopic(rest string) (TopicName, bool) {
	p, ok := splitN(rest, 3)
	if !ok || strings.IndexByte(p[2], '/') >= 0 {
		return TopicName{}, false
	}
	return TopicName{p[0], p[1], p[2]}, true
}

func parsePartition(rest string) (PartitionName, bool) {
	p, ok := splitN(rest, 4)
	if !ok {
		return PartitionName{}, false
	}
	i, err := strconv.ParseInt(p[3], 10, 32)
	if err != nil || i < 0 {
		return PartitionName{}, false
	}
	return PartitionName{TopicName{p[0], p[1], p[2]}, int32(i)}, true
}

func parseCursor(rest string) (CursorName, bool) {
	p, ok := splitN(rest, 5)
	if !ok {
		return CursorName{}, false
	}
	i, err := strconv.ParseInt(p[3], 10, 32)
	if err != nil || i < 0 {
		return CursorName{}, false
	}
	return CursorName{PartitionName{TopicName{p[0], p[1], p[2]}, int32(i)}, p[4]}, true
}

func ackChunkPath(a AckChunkName) (string, error) {
	c, err := cursorPath(a.Cursor)
	if err != nil {
		return "", err
	}
	if a.Chunk < 0 {
		return "", fmt.Errorf("%w: negative ack chunk %d", ErrInvalidName, a.Chunk)
	}
	return fmt.Sprintf("%s/%016x", c, a.Chunk), nil
}

func parseAckChunk(rest string) (AckChunkName, bool) {
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return AckChunkName{}, false
	}
	c, ok := parseCursor(rest[:i])
	if !ok || len(rest)-i-1 != 16 {
		return AckChunkName{}, false
	}
	n, err := strconv.ParseInt(rest[i+1:], 16, 64)
	if err != nil || n < 0 {
		return AckChunkName{}, false
	}
	return AckChunkName{c, n}, true
}

func bundlePath(b BundleName) (string, error) {
	ns, err := nsPath(b.Namespace)
	if err != nil {
		return "", err
	}
	if b.Start > b.End {
		return "", fmt.Errorf("%w: bundle range %08x > %08x", ErrInvalidName, b.Start, b.End)
	}
	return fmt.Sprintf("%s/%08x-%08x", ns, b.Start, b.End), nil
}

func parseBundle(rest string) (BundleName, bool) {
	p, ok := splitN(rest, 3)
	if !ok || len(p[2]) != 17 || p[2][8] != '-' {
		return BundleName{}, false
	}
	s, err1 := strconv.ParseUint(p[2][:8], 16, 32)
	e, err2 := strconv.ParseUint(p[2][9:], 16, 32)
	if err1 != nil || err2 != nil || s > e {
		return BundleName{}, false
	}
	return BundleName{NamespaceName{p[0], p[1]}, uint32(s), uint32(e)}, true
}

func parseID(rest string) (string, bool) {
	return rest, rest != "" && strings.IndexByte(rest, '/') < 0
}

package kafka

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The tagged-field guard. kmsg (v1.15.0) reads a tagged-field count as a
// uvarint and loops that many times even once the input is exhausted, so a
// 20-byte flexible request claiming 2^32-1 tags costs over a minute of CPU
// before it is refused. Before kmsg sees a flexible body, checkTags walks
// it with the request's schema below, reading every field exactly as kmsg
// reads it (kbin's 32-bit uvarints, compact lengths, array bounds), and
// refuses a tagged-field section that claims more tags than the bytes left
// could hold: each tag takes at least two bytes, its key and its size.
// kmsg then reads the same bytes from the same positions, so every count
// it loops on has been checked; where the walker is more lenient than kmsg
// (a compact string of length -1), kmsg fails there and reads no further
// counts. A non-flexible body has no tagged fields, and kmsg bounds every
// array length by the bytes left.
//
// The schemas cover the flexible versions served (versions.go), from
// Kafka's message definitions; TestTaggedFieldSchemasMatchKmsg encodes
// every served flexible version with kmsg and checks the walk ends exactly
// at the end, and FuzzParseRequest checks it on every request it decodes.

// fieldKind is how a field of a flexible body is encoded.
type fieldKind uint8

const (
	kindInt8    fieldKind = iota + 1 // also bool and int8 enums
	kindInt16                        //
	kindInt32                        //
	kindInt64                        // also float64
	kindUUID                         //
	kindBytes                        // compact (nullable) string or bytes: uvarint length+1, then the bytes
	kindArray                        // compact array of a fixed-size element or of kindBytes
	kindStructs                      // compact array of structs, each ending with its tagged fields
)

// fixedSize is the size of a fixed-size kind, 0 for the others.
func (k fieldKind) fixedSize() int {
	switch k {
	case kindInt8:
		return 1
	case kindInt16:
		return 2
	case kindInt32:
		return 4
	case kindInt64:
		return 8
	case kindUUID:
		return 16
	}
	return 0
}

// field is one field of a struct, present in versions from..to (to < 0:
// every version from on).
type field struct {
	kind     fieldKind
	from, to int16
	elem     fieldKind   // kindArray: a fixed-size kind or kindBytes
	elems    *flexStruct // kindStructs
}

// flexStruct is a struct of a flexible version: its fields, then its
// tagged fields. tagged lists the tags whose value kmsg decodes as a
// struct, which has tagged fields of its own; every other tag's value is
// opaque bytes to kmsg.
type flexStruct struct {
	fields []field
	tagged map[uint32]*flexStruct
}

var (
	i8   = field{kind: kindInt8, to: -1}
	i16  = field{kind: kindInt16, to: -1}
	i32  = field{kind: kindInt32, to: -1}
	i64  = field{kind: kindInt64, to: -1}
	uuid = field{kind: kindUUID, to: -1}
	str  = field{kind: kindBytes, to: -1} // string, nullable string, bytes, nullable bytes
	i32s = field{kind: kindArray, elem: kindInt32, to: -1}
	strs = field{kind: kindArray, elem: kindBytes, to: -1}
)

// since and until restrict a field to versions v and later, or up to v.
func (f field) since(v int16) field { f.from = v; return f }
func (f field) until(v int16) field { f.to = v; return f }

// structs is a compact array of structs with these fields.
func structs(fields ...field) field {
	return field{kind: kindStructs, elems: &flexStruct{fields: fields}, to: -1}
}

func body(fields ...field) *flexStruct { return &flexStruct{fields: fields} }

// flexibleBodies are the request bodies of the flexible versions served,
// by API key; each field is commented with its name in Kafka's schema.
var flexibleBodies = map[kmsg.Key]*flexStruct{
	kmsg.Produce: body( // v9+
		str, // TransactionID
		i16, // Acks
		i32, // TimeoutMillis
		structs( // Topics
			str.until(12),      // Topic
			uuid.since(13),     // TopicID
			structs(i32, str)), // Partitions: Partition, Records
	),
	kmsg.Fetch: {fields: []field{ // v12+
		i32.until(14), // ReplicaID
		i32,           // MaxWaitMillis
		i32,           // MinBytes
		i32.since(3),  // MaxBytes
		i8.since(4),   // IsolationLevel
		i32.since(7),  // SessionID
		i32.since(7),  // SessionEpoch
		structs( // Topics
			str.until(12),  // Topic
			uuid.since(13), // TopicID
			structs( // Partitions (tags 0 and 1 are a UUID and an int64)
				i32,           // Partition
				i32.since(9),  // CurrentLeaderEpoch
				i64,           // FetchOffset
				i32.since(12), // LastFetchedEpoch
				i64.since(5),  // LogStartOffset
				i32,           // PartitionMaxBytes
			)),
		structs(str.until(12), uuid.since(13), i32s).since(7), // ForgottenTopics: Topic, TopicID, Partitions
		str.since(11), // Rack
	}, tagged: map[uint32]*flexStruct{ // tag 0 is ClusterID, a string
		1: body(i32, i64), // ReplicaState: ID, Epoch
	}},
	kmsg.ListOffsets: body( // v6+
		i32,         // ReplicaID
		i8.since(2), // IsolationLevel
		structs( // Topics
			str, // Topic
			structs( // Partitions
				i32,          // Partition
				i32.since(4), // CurrentLeaderEpoch
				i64,          // Timestamp
				i32.until(0), // MaxNumOffsets
			)),
		i32.since(10), // TimeoutMillis
	),
	kmsg.Metadata: body( // v9+
		structs(uuid.since(10), str), // Topics: TopicID, Topic
		i8.since(4),                  // AllowAutoTopicCreation
		i8.since(8).until(10),        // IncludeClusterAuthorizedOperations
		i8.since(8),                  // IncludeTopicAuthorizedOperations
	),
	kmsg.OffsetCommit: body( // v8+
		str,                   // Group
		i32.since(1),          // Generation
		str.since(1),          // MemberID
		str.since(7),          // InstanceID
		i64.since(2).until(4), // RetentionTimeMillis
		structs( // Topics
			str.until(9),   // Topic
			uuid.since(10), // TopicID
			structs( // Partitions
				i32,                   // Partition
				i64,                   // Offset
				i64.since(1).until(1), // Timestamp
				i32.since(6),          // LeaderEpoch
				str,                   // Metadata
			)),
	),
	kmsg.OffsetFetch: body( // v6+
		str.until(7),                // Group
		structs(str, i32s).until(7), // Topics: Topic, Partitions
		structs( // Groups
			str,          // Group
			str.since(9), // MemberID
			i32.since(9), // MemberEpoch
			structs(str.since(8).until(9), uuid.since(10), i32s), // Topics: Topic, TopicID, Partitions
		).since(8),
		i8.since(7), // RequireStable
	),
	kmsg.FindCoordinator: body( // v3+
		str.until(3),  // CoordinatorKey
		i8.since(1),   // CoordinatorType
		strs.since(4), // CoordinatorKeys
	),
	kmsg.JoinGroup: body( // v6+
		str,               // Group
		i32,               // SessionTimeoutMillis
		i32.since(1),      // RebalanceTimeoutMillis
		str,               // MemberID
		str.since(5),      // InstanceID
		str,               // ProtocolType
		structs(str, str), // Protocols: Name, Metadata
		str.since(8),      // Reason
	),
	kmsg.Heartbeat: body( // v4+
		str,          // Group
		i32,          // Generation
		str,          // MemberID
		str.since(3), // InstanceID
	),
	kmsg.LeaveGroup: body( // v4+
		str,                                      // Group
		str.until(2),                             // MemberID
		structs(str, str, str.since(5)).since(3), // Members: MemberID, InstanceID, Reason
	),
	kmsg.SyncGroup: body( // v4+
		str,               // Group
		i32,               // Generation
		str,               // MemberID
		str.since(3),      // InstanceID
		str.since(5),      // ProtocolType
		str.since(5),      // Protocol
		structs(str, str), // GroupAssignment: MemberID, MemberAssignment
	),
	kmsg.DescribeGroups: body( // v5+
		strs,        // Groups
		i8.since(3), // IncludeAuthorizedOperations
	),
	kmsg.ListGroups: body( // v3+
		strs.since(4), // StatesFilter
		strs.since(5), // TypesFilter
	),
	kmsg.ApiVersions: body( // v3+
		str.since(3), // ClientSoftwareName
		str.since(3), // ClientSoftwareVersion
		str.since(5), // ClusterID
		i32.since(5), // NodeID
	),
	kmsg.CreateTopics: body( // v5+
		structs( // Topics
			str,                // Topic
			i32,                // NumPartitions
			i16,                // ReplicationFactor
			structs(i32, i32s), // ReplicaAssignment: Partition, Replicas
			structs(str, str),  // Configs: Name, Value
		),
		i32,         // TimeoutMillis
		i8.since(1), // ValidateOnly
	),
	kmsg.DeleteTopics: body( // v4+
		strs.until(5),               // TopicNames
		structs(str, uuid).since(6), // Topics: Topic, TopicID
		i32,                         // TimeoutMillis
	),
	kmsg.InitProducerID: body( // v2+
		str,          // TransactionalID
		i32,          // TransactionTimeoutMillis
		i64.since(3), // ProducerID
		i16.since(3), // ProducerEpoch
	),
	kmsg.DescribeACLs: body( // v2+
		i8,          // ResourceType
		str,         // ResourceName
		i8.since(1), // ResourcePatternType
		str,         // Principal
		str,         // Host
		i8,          // Operation
		i8,          // PermissionType
	),
	kmsg.CreateACLs: body( // v2+
		structs(i8, str, i8.since(1), str, str, i8, i8), // Creations: ResourceType, ResourceName, ResourcePatternType, Principal, Host, Operation, PermissionType
	),
	kmsg.DeleteACLs: body( // v2+
		structs(i8, str, i8.since(1), str, str, i8, i8), // Filters: ResourceType, ResourceName, ResourcePatternType, Principal, Host, Operation, PermissionType
	),
	kmsg.DescribeConfigs: body( // v4+
		structs(i8, str, strs), // Resources: ResourceType, ResourceName, ConfigNames
		i8.since(1),            // IncludeSynonyms
		i8.since(3),            // IncludeDocumentation
	),
	kmsg.SASLAuthenticate: body( // v2+
		str, // SASLAuthBytes
	),
	kmsg.CreatePartitions: body( // v2+
		structs(str, i32, structs(i32s)), // Topics: Topic, Count, Assignment (Replicas)
		i32,                              // TimeoutMillis
		i8,                               // ValidateOnly
	),
	kmsg.DeleteGroups: body( // v2+
		strs, // Groups
	),
	kmsg.DescribeCluster: body( // v0+
		i8,          // IncludeClusterAuthorizedOperations
		i8.since(1), // EndpointType
		i8.since(2), // IncludeFencedBrokers
	),
}

// checkTags refuses a flexible request body with a tagged-field section
// that claims more tags than it could hold, before kmsg decodes it.
func checkTags(key, version int16, b []byte) error {
	_, err := walkFlexible(key, version, b)
	return err
}

// walkFlexible walks a flexible body as kmsg reads it and returns the
// walker: what it left unread, and the first error.
func walkFlexible(key, version int16, b []byte) (*tagWalker, error) {
	s, ok := flexibleBodies[kmsg.Key(key)]
	if !ok {
		return nil, fmt.Errorf("%w: %s v%d: no tagged-field schema", ErrUnsupported, kmsg.NameForKey(key), version)
	}
	w := &tagWalker{b: b, version: version}
	w.walk(s)
	if w.err != nil {
		return w, fmt.Errorf("%w: %s v%d body: %v", ErrMalformed, kmsg.NameForKey(key), version, w.err)
	}
	return w, nil
}

// tagWalker is a cursor over a flexible body that records the first error.
type tagWalker struct {
	b       []byte
	version int16
	err     error
	// trailing counts bytes left unread at the end of known tags' values
	// (kmsg ignores them too); 0 for any client-encoded request.
	trailing int
}

func (w *tagWalker) fail(format string, args ...any) {
	if w.err == nil {
		w.err = fmt.Errorf(format, args...)
	}
	w.b = nil
}

// uvarint reads a uvarint as kbin does: 32 bits, at most 5 bytes.
func (w *tagWalker) uvarint() uint32 {
	v, n := binary.Uvarint(w.b)
	if n <= 0 || n > 5 || v > math.MaxUint32 {
		w.fail("bad or truncated uvarint")
		return 0
	}
	w.b = w.b[n:]
	return uint32(v)
}

func (w *tagWalker) skip(n int) {
	if n < 0 || len(w.b) < n {
		w.fail("truncated: %d bytes wanted, %d left", n, len(w.b))
		return
	}
	w.b = w.b[n:]
}

func (w *tagWalker) walk(s *flexStruct) {
	for _, f := range s.fields {
		if w.err != nil {
			return
		}
		if w.version < f.from || (f.to >= 0 && w.version > f.to) {
			continue
		}
		switch f.kind {
		case kindArray, kindStructs:
			n := int32(w.uvarint()) - 1 // kbin's CompactArrayLen, overflow included
			if int(n) > len(w.b) {
				w.fail("array of %d elements with %d bytes left", n, len(w.b))
			}
			for i := int32(0); i < n && w.err == nil; i++ {
				if f.kind == kindArray {
					w.value(f.elem)
				} else {
					w.walk(f.elems)
				}
			}
		default:
			w.value(f.kind)
		}
	}
	w.tags(s.tagged)
}

// value skips a fixed-size value or a compact string or bytes.
func (w *tagWalker) value(k fieldKind) {
	if k != kindBytes {
		w.skip(k.fixedSize())
		return
	}
	if n := w.uvarint(); n > 0 {
		w.skip(int(n) - 1)
	}
}

// tags walks a tagged-fields section, checking its count first.
func (w *tagWalker) tags(known map[uint32]*flexStruct) {
	n := w.uvarint()
	if w.err != nil {
		return
	}
	if uint64(n) > uint64(len(w.b))/2 {
		w.fail("%d tagged fields claimed with %d bytes left", n, len(w.b))
		return
	}
	for i := uint32(0); i < n && w.err == nil; i++ {
		key, size := w.uvarint(), w.uvarint()
		if w.err != nil {
			return
		}
		if uint64(size) > uint64(len(w.b)) {
			w.fail("tag %d of %d bytes with %d left", key, size, len(w.b))
			return
		}
		value := w.b[:size]
		w.b = w.b[size:]
		if s := known[key]; s != nil {
			inner := tagWalker{b: value, version: w.version}
			inner.walk(s)
			if inner.err != nil {
				w.fail("tag %d: %v", key, inner.err)
				return
			}
			w.trailing += inner.trailing + len(inner.b)
		}
	}
}

package kafka

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/magnetar-mq/magnetar/internal/record"
)

// seedRequests are real requests, as a client encodes them, for every
// served key at its lowest and highest version.
func seedRequests(t testing.TB) [][]byte {
	batch, err := record.AppendBatch(nil, record.BatchOptions{Codec: record.CodecSnappy}, []record.Record{{Key: []byte("k"), Value: []byte("v")}})
	if err != nil {
		t.Fatal(err)
	}
	var seeds [][]byte
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	for _, v := range supported {
		for _, version := range []int16{v.min, v.max} {
			req := kmsg.RequestForKey(v.key)
			req.SetVersion(version)
			switch r := req.(type) {
			case *kmsg.ProduceRequest:
				*r = *produceRequest(t, "t", 0, -1, batch)
				r.Version = version
			case *kmsg.FetchRequest:
				*r = *fetchRequest("t", 0, 0)
				r.Version = version
			case *kmsg.MetadataRequest:
				r.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("t")}}
			case *kmsg.CreateTopicsRequest:
				r.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "t", NumPartitions: 3, ReplicationFactor: 1}}
			case *kmsg.ApiVersionsRequest:
				r.ClientSoftwareName, r.ClientSoftwareVersion = "fuzz", "1"
			case *kmsg.JoinGroupRequest:
				*r = *joinReq("g", "m", kmsg.StringPtr("i"), "meta")
				r.Version = version
			case *kmsg.SyncGroupRequest:
				*r = *syncReq("g", "m", 1, map[string]string{"m": "assignment"})
				r.Version = version
			case *kmsg.OffsetCommitRequest:
				r.Group, r.MemberID = "g", "m"
				r.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 1, Offset: 7, Metadata: kmsg.StringPtr("md")}}}}
			}
			frame := f.AppendRequest(nil, req, 1)
			seeds = append(seeds, frame[4:]) // without the size prefix
		}
	}
	return seeds
}

func TestSeedRequestsParse(t *testing.T) {
	for _, s := range seedRequests(t) {
		q, err := parseRequest(s)
		if err != nil || q.req == nil {
			t.Fatalf("a client-encoded request does not parse: %v", err)
		}
	}
}

// FuzzParseRequest feeds arbitrary frames to the request decoder (header,
// tagged fields, kmsg body): it must return a request or an error, never
// panic nor spin, and a request it accepts must be of an advertised key and
// version; kmsg's encoding of a flexible one must walk, by the tagged-field
// guard's schema, to exactly its end.
func FuzzParseRequest(f *testing.F) {
	for _, s := range seedRequests(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		q, err := parseRequest(frame)
		if err != nil {
			return
		}
		vr, ok := versionsOf(q.key)
		if !ok {
			t.Fatalf("accepted unserved key %d", q.key)
		}
		if q.req == nil {
			if q.key != int16(kmsg.ApiVersions) || (q.version >= vr.min && q.version <= vr.max) {
				t.Fatalf("no body for %d v%d", q.key, q.version)
			}
			return
		}
		if q.version < vr.min || q.version > vr.max || q.req.GetVersion() != q.version {
			t.Fatalf("accepted %d v%d outside %d-%d", q.key, q.version, vr.min, vr.max)
		}
		if q.req.IsFlexible() {
			b := q.req.AppendTo(nil)
			if w, err := walkFlexible(q.key, q.version, b); err != nil || len(w.b) != 0 || w.trailing != 0 {
				t.Fatalf("%s v%d: kmsg's encoding does not walk to its end: %v", kmsg.NameForKey(q.key), q.version, err)
			}
		}
		// What the handlers do first with a body must not panic either.
		if p, ok := q.req.(*kmsg.ProduceRequest); ok {
			for _, t := range p.Topics {
				for _, part := range t.Partitions {
					record.Validate(part.Records)
				}
			}
		}
	})
}

// TestHugeTagCountInAFlexibleBody was found by FuzzParseRequest: kmsg
// v1.15.0 reads a tagged-field count as a uvarint and loops that many
// times even once the input is exhausted, so this tiny flexible request
// claiming ~4 billion tags cost tens of seconds of CPU before it was
// refused. The tagged-field guard (tagged_fields.go) refuses it first.
func TestHugeTagCountInAFlexibleBody(t *testing.T) {
	frame := []byte("\x00\x00\x00\tAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\xe7\xe5\xeaQ\xdf\x9b\x93\x00\v\t \x10\x00\x00\x00\x02k\x02vP")
	if _, err := parseRequest(frame); !errors.Is(err, ErrMalformed) {
		t.Fatalf("parseRequest: %v, want ErrMalformed", err)
	}
}

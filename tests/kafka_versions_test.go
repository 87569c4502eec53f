package tests

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawKafkaConn speaks the Kafka framing over one TCP connection, at
// exactly the request versions it is given: clients negotiate versions,
// so old ones are only reached this way.
type rawKafkaConn struct {
	t      *testing.T
	c      net.Conn
	r      *bufio.Reader
	format *kmsg.RequestFormatter
	corrID int32
}

func dialRawKafka(t *testing.T, addr string) *rawKafkaConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawKafkaConn{t: t, c: c, r: bufio.NewReader(c), format: kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw"))}
}

// roundTrip sends req at its set version and decodes the response at the
// same version; it fails the test if the connection closes or the
// response does not decode.
func (rc *rawKafkaConn) roundTrip(req kmsg.Request) kmsg.Response {
	rc.t.Helper()
	rc.corrID++
	what := fmt.Sprintf("%s v%d", kmsg.NameForKey(req.Key()), req.GetVersion())
	if err := rc.c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		rc.t.Fatal(err)
	}
	if _, err := rc.c.Write(rc.format.AppendRequest(nil, req, rc.corrID)); err != nil {
		rc.t.Fatalf("%s: writing: %v", what, err)
	}
	var size int32
	if err := binary.Read(rc.r, binary.BigEndian, &size); err != nil {
		rc.t.Fatalf("%s: no response (the connection was closed?): %v", what, err)
	}
	frame := make([]byte, size)
	if _, err := io.ReadFull(rc.r, frame); err != nil {
		rc.t.Fatalf("%s: reading the response: %v", what, err)
	}
	if got := int32(binary.BigEndian.Uint32(frame)); got != rc.corrID {
		rc.t.Fatalf("%s: correlation ID %d, want %d", what, got, rc.corrID)
	}
	body := frame[4:]
	// Flexible responses have a tagged-field header, except ApiVersions
	// (KIP-511: its response header stays v0).
	if req.IsFlexible() && req.Key() != int16(kmsg.ApiVersions) {
		if len(body) == 0 || body[0] != 0 {
			rc.t.Fatalf("%s: response header tags %x, want none", what, body[:min(len(body), 1)])
		}
		body = body[1:]
	}
	resp := req.ResponseKind()
	if err := resp.ReadFrom(body); err != nil {
		rc.t.Fatalf("%s: response does not decode at that version: %v", what, err)
	}
	return resp
}

// oneRecordBatch is a RecordBatch v2 holding one uncompressed record.
func oneRecordBatch(value string) []byte {
	var rec []byte
	rec = append(rec, 0)               // attributes
	rec = binary.AppendVarint(rec, 0)  // timestamp delta
	rec = binary.AppendVarint(rec, 0)  // offset delta
	rec = binary.AppendVarint(rec, -1) // null key
	rec = binary.AppendVarint(rec, int64(len(value)))
	rec = append(rec, value...)
	rec = binary.AppendVarint(rec, 0) // no headers
	records := binary.AppendVarint(nil, int64(len(rec)))
	records = append(records, rec...)

	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1, Records: records}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// advertised returns the version range of key that ApiVersions lists.
func advertised(t *testing.T, rc *rawKafkaConn, key kmsg.Key) (minV, maxV int16) {
	t.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 0
	resp := rc.roundTrip(req).(*kmsg.ApiVersionsResponse)
	for _, k := range resp.ApiKeys {
		if k.ApiKey == int16(key) {
			return k.MinVersion, k.MaxVersion
		}
	}
	t.Fatalf("ApiVersions does not list %s", kmsg.NameForKey(int16(key)))
	return 0, 0
}

func errorName(code int16) string {
	if code == 0 {
		return "no error"
	}
	return kerr.ErrorForCode(code).Error()
}

// TestKafkaEveryAdvertisedVersionOfTheDataAndAdminAPIsAnswers sends each
// data and admin API at every version ApiVersions advertises, over one
// connection, the way an old client would, and decodes each response at
// that version: the connection stays open, the answer decodes, and a valid
// request succeeds (Produce v0-2 excepted: UNSUPPORTED_VERSION per
// partition, by design). A topic is created, grown, described, written,
// read, listed and deleted at each version of each API.
func TestKafkaEveryAdvertisedVersionOfTheDataAndAdminAPIsAnswers(t *testing.T) {
	_, addr := startKafkaServer(t)
	rc := dialRawKafka(t, addr)
	sweep := func(key kmsg.Key, do func(t *testing.T, v int16)) {
		lo, hi := advertised(t, rc, key)
		for v := lo; v <= hi; v++ {
			t.Run(fmt.Sprintf("%s v%d", kmsg.NameForKey(int16(key)), v), func(t *testing.T) { do(t, v) })
		}
	}
	topicAt := func(key kmsg.Key, v int16) string { return fmt.Sprintf("%s-v%d", kmsg.NameForKey(int16(key)), v) }

	sweep(kmsg.ApiVersions, func(t *testing.T, v int16) {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version, req.ClientSoftwareName, req.ClientSoftwareVersion = v, "raw", "1"
		if resp := rc.roundTrip(req).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
			t.Fatalf("%s, %d keys", errorName(resp.ErrorCode), len(resp.ApiKeys))
		}
	})

	// One topic per CreateTopics version; each is then grown, described
	// and deleted at every version of those APIs, in turn.
	var topics []string
	sweep(kmsg.CreateTopics, func(t *testing.T, v int16) {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Version, req.TimeoutMillis = v, 10000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topicAt(kmsg.CreateTopics, v), 1, 1
		req.Topics = append(req.Topics, rt)
		resp := rc.roundTrip(req).(*kmsg.CreateTopicsResponse)
		if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
			t.Fatalf("%+v", resp.Topics)
		}
		topics = append(topics, rt.Topic)
	})
	sweep(kmsg.Metadata, func(t *testing.T, v int16) {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = v
		for _, name := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(name)
			req.Topics = append(req.Topics, rt)
		}
		resp := rc.roundTrip(req).(*kmsg.MetadataResponse)
		if len(resp.Brokers) != 1 || len(resp.Topics) != len(topics) {
			t.Fatalf("%d brokers, %d topics; want 1 and %d", len(resp.Brokers), len(resp.Topics), len(topics))
		}
		for _, rt := range resp.Topics {
			if rt.ErrorCode != 0 || len(rt.Partitions) != 1 || rt.Partitions[0].Leader != resp.Brokers[0].NodeID {
				t.Fatalf("topic %v: %s, %d partitions", rt.Topic, errorName(rt.ErrorCode), len(rt.Partitions))
			}
		}
	})
	sweep(kmsg.CreatePartitions, func(t *testing.T, v int16) {
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.Version, req.TimeoutMillis = v, 10000
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = topics[0], int32(v)+2
		req.Topics = append(req.Topics, rt)
		resp := rc.roundTrip(req).(*kmsg.CreatePartitionsResponse)
		if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
			t.Fatalf("%+v", resp.Topics)
		}
	})
	sweep(kmsg.DescribeConfigs, func(t *testing.T, v int16) {
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.Version, req.IncludeDocumentation = v, true
		for _, r := range []struct {
			typ  kmsg.ConfigResourceType
			name string
		}{{kmsg.ConfigResourceTypeTopic, topics[0]}, {kmsg.ConfigResourceTypeBroker, "0"}} {
			rr := kmsg.NewDescribeConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = r.typ, r.name
			req.Resources = append(req.Resources, rr)
		}
		resp := rc.roundTrip(req).(*kmsg.DescribeConfigsResponse)
		if len(resp.Resources) != 2 {
			t.Fatalf("%d resources, want 2", len(resp.Resources))
		}
		for _, r := range resp.Resources {
			if r.ErrorCode != 0 || len(r.Configs) == 0 {
				t.Fatalf("%s %q: %s, %d configs", r.ResourceType, r.ResourceName, errorName(r.ErrorCode), len(r.Configs))
			}
		}
	})

	const data = "data"
	var produced int64
	sweep(kmsg.Produce, func(t *testing.T, v int16) {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = v, -1, 10000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = data
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = oneRecordBatch(fmt.Sprintf("produce v%d", v))
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		if v == 0 { // auto-create the topic first
			md := kmsg.NewPtrMetadataRequest()
			md.Version = 0
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = kmsg.StringPtr(data)
			md.Topics = append(md.Topics, mt)
			rc.roundTrip(md)
		}
		resp := rc.roundTrip(req).(*kmsg.ProduceResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("%+v", resp.Topics)
		}
		p := resp.Topics[0].Partitions[0]
		if v < 3 {
			if p.ErrorCode != kerr.UnsupportedVersion.Code {
				t.Fatalf("Produce v%d (message format v0/v1): %s, want UNSUPPORTED_VERSION", v, errorName(p.ErrorCode))
			}
			return
		}
		if p.ErrorCode != 0 || p.BaseOffset != produced {
			t.Fatalf("%s at offset %d, want offset %d", errorName(p.ErrorCode), p.BaseOffset, produced)
		}
		produced++
	})
	sweep(kmsg.Fetch, func(t *testing.T, v int16) {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.SessionEpoch = v, 100, 1, 1<<20, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = data
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.PartitionMaxBytes = 1, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := rc.roundTrip(req).(*kmsg.FetchResponse)
		if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("%s, %+v", errorName(resp.ErrorCode), resp.Topics)
		}
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.HighWatermark != produced || len(p.RecordBatches) == 0 {
			t.Fatalf("%s, high watermark %d (want %d), %d bytes", errorName(p.ErrorCode), p.HighWatermark, produced, len(p.RecordBatches))
		}
		var batch kmsg.RecordBatch
		if err := batch.ReadFrom(p.RecordBatches); err != nil || batch.FirstOffset != 1 {
			t.Fatalf("first batch: offset %d, %v; want the batch at offset 1", batch.FirstOffset, err)
		}
	})
	sweep(kmsg.ListOffsets, func(t *testing.T, v int16) {
		for _, c := range []struct {
			ts, want int64
		}{{-2, 0}, {-1, produced}, {0, 0}} {
			req := kmsg.NewPtrListOffsetsRequest()
			req.Version, req.ReplicaID = v, -1
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = data
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Timestamp, rp.MaxNumOffsets = c.ts, 1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp := rc.roundTrip(req).(*kmsg.ListOffsetsResponse)
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("timestamp %d: %+v", c.ts, resp.Topics)
			}
			if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.Offset != c.want {
				t.Fatalf("timestamp %d: %s, offset %d; want offset %d", c.ts, errorName(p.ErrorCode), p.Offset, c.want)
			}
		}
	})
	sweep(kmsg.InitProducerID, func(t *testing.T, v int16) {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version, req.TransactionTimeoutMillis = v, 10000
		resp := rc.roundTrip(req).(*kmsg.InitProducerIDResponse)
		if resp.ErrorCode != 0 || resp.ProducerID < 0 || resp.ProducerEpoch != 0 {
			t.Fatalf("%s, producer %d epoch %d", errorName(resp.ErrorCode), resp.ProducerID, resp.ProducerEpoch)
		}
	})

	sweep(kmsg.DeleteTopics, func(t *testing.T, v int16) {
		if len(topics) == 0 {
			t.Skip("no topic left to delete")
		}
		name := topics[0]
		topics = topics[1:]
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.Version, req.TimeoutMillis = v, 10000
		req.TopicNames = []string{name}
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
		resp := rc.roundTrip(req).(*kmsg.DeleteTopicsResponse)
		if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 || resp.Topics[0].Topic == nil || *resp.Topics[0].Topic != name {
			t.Fatalf("%+v", resp.Topics)
		}
	})
}

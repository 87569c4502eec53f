package kafka

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/internal/record"
	"github.com/magnetar-mq/magnetar/metadata/metadatatest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testServer is a Kafka server on a broker over in-memory stores,
// listening on a real loopback socket.
type testServer struct {
	s    *Server
	b    *broker.Broker
	addr string
}

func newTestServer(t testing.TB, mutate ...func(*Config)) *testServer {
	t.Helper()
	return newTestServerOn(t, broker.DefaultConfig(), nil, mutate...)
}

// newTestServerOn is newTestServer on a broker configured with bcfg, and
// prepared by prepare (if not nil) before the server starts.
func newTestServerOn(t testing.TB, bcfg broker.Config, prepare func(*broker.Broker), mutate ...func(*Config)) *testServer {
	t.Helper()
	meta := metadatatest.NewStore()
	b, err := broker.New(bcfg, meta, bookie.OneShard("s1", bookietest.NewFake()), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(b)
	}
	cfg := DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	for _, m := range mutate {
		m(&cfg)
	}
	s, err := NewServer(cfg, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		if err := <-served; err != nil {
			t.Error(err)
		}
		b.Close()
		meta.Close()
	})
	return &testServer{s: s, b: b, addr: ln.Addr().String()}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rawConn speaks the protocol by hand, to send exact versions and read
// exact responses.
type rawConn struct {
	t    testing.TB
	nc   net.Conn
	corr int32
}

func (ts *testServer) dial(t testing.TB) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawConn{t: t, nc: nc}
}

// send writes req at its set version and returns its correlation ID.
func (c *rawConn) send(req kmsg.Request) int32 {
	c.t.Helper()
	c.corr++
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("test")).AppendRequest(nil, req, c.corr)
	if _, err := c.nc.Write(frame); err != nil {
		c.t.Fatal(err)
	}
	return c.corr
}

// readFrame reads one response frame: its correlation ID and the rest.
func (c *rawConn) readFrame() (int32, []byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		return 0, nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.nc, b); err != nil {
		return 0, nil, err
	}
	return int32(binary.BigEndian.Uint32(b)), b[4:], nil
}

// read reads the response to req, which must be the next one.
func (c *rawConn) read(req kmsg.Request, corr int32) kmsg.Response {
	c.t.Helper()
	got, body, err := c.readFrame()
	if err != nil {
		c.t.Fatalf("reading the response to %s: %v", kmsg.NameForKey(req.Key()), err)
	}
	if got != corr {
		c.t.Fatalf("response correlation ID %d, want %d", got, corr)
	}
	resp := req.ResponseKind()
	if resp.IsFlexible() && resp.Key() != int16(kmsg.ApiVersions) {
		body = body[1:] // empty tagged fields
	}
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatalf("decoding %s v%d response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

func (c *rawConn) roundTrip(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	return c.read(req, c.send(req))
}

// expectClosed checks that the server closed the connection.
func (c *rawConn) expectClosed() {
	c.t.Helper()
	if _, _, err := c.readFrame(); err == nil {
		c.t.Fatal("the connection is still open and answered")
	}
}

// waitFor polls cond until it holds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func createTopic(t testing.TB, c *rawConn, name string, partitions int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
	req.Topics = append(req.Topics, rt)
	resp := c.roundTrip(req).(*kmsg.CreateTopicsResponse)
	if code := resp.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("creating %s: error %d", name, code)
	}
}

// batchOf encodes n records as a producer would (no producer ID).
func batchOf(t testing.TB, n int) []byte {
	t.Helper()
	return producerBatch(t, n, record.CodecNone, nil)
}

func producerBatch(t testing.TB, n int, codec record.Codec, p *record.Producer) []byte {
	t.Helper()
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i)), Timestamp: time.Now().UnixMilli()}
	}
	b, err := record.AppendBatch(nil, record.BatchOptions{Codec: codec, Producer: p, PartitionLeaderEpoch: record.NoPartitionLeaderEpoch}, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func produceRequest(t testing.TB, topic string, partition int32, acks int16, batch []byte) *kmsg.ProduceRequest {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = acks
	req.TimeoutMillis = 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func fetchRequest(topic string, partition int32, offset int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.ReplicaID = -1
	req.MaxBytes = 1 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, offset, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func timeMillis(ms int64) time.Time { return time.UnixMilli(ms) }

func bigBatch(t testing.TB, value []byte) []byte {
	t.Helper()
	b, err := record.AppendBatch(nil, record.BatchOptions{}, []record.Record{{Value: value}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

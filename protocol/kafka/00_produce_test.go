package kafka

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/magnetar-mq/magnetar/internal/record"
)

func produceCode(t *testing.T, c *rawConn, req *kmsg.ProduceRequest) (int16, int64) {
	t.Helper()
	p := c.roundTrip(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	return p.ErrorCode, p.BaseOffset
}

func TestProduceRefusals(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.MaxMessageBytes = 1000 })
	c := ts.dial(t)
	createTopic(t, c, "refusals", 1)
	good := batchOf(t, 2)
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)-1] ^= 1

	v2 := produceRequest(t, "refusals", 0, -1, good)
	v2.Version = 2
	for _, tc := range []struct {
		name string
		req  *kmsg.ProduceRequest
		want *kerr.Error
	}{
		{"v2 (old message format) is unsupported", v2, kerr.UnsupportedVersion},
		{"a flipped byte is a corrupt message", produceRequest(t, "refusals", 0, -1, corrupt), kerr.CorruptMessage},
		{"a batch over max-message-bytes is too large", produceRequest(t, "refusals", 0, -1, batchOf(t, 100)), kerr.MessageTooLarge},
		{"an unknown topic", produceRequest(t, "nope", 0, -1, good), kerr.UnknownTopicOrPartition},
		{"an unknown partition", produceRequest(t, "refusals", 5, -1, good), kerr.UnknownTopicOrPartition},
		{"an invalid topic name", produceRequest(t, "a/b", 0, -1, good), kerr.InvalidTopicException},
		{"acks=2", produceRequest(t, "refusals", 0, 2, good), kerr.InvalidRequiredAcks},
	} {
		if code, _ := produceCode(t, c, tc.req); code != tc.want.Code {
			t.Errorf("%s: error %d, want %d (%s)", tc.name, code, tc.want.Code, tc.want.Message)
		}
	}
	if code, base := produceCode(t, c, produceRequest(t, "refusals", 0, 1, good)); code != 0 || base != 0 {
		t.Fatalf("a good batch after the refusals: error %d, base %d; want it at 0", code, base)
	}
}

func TestProduceWithAcksZeroSendsNoResponse(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.dial(t)
	createTopic(t, c, "fire", 1)
	c.send(produceRequest(t, "fire", 0, 0, batchOf(t, 4)))
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 1
	mc := c.send(meta)
	c.read(meta, mc) // the next frame answers metadata: produce got none
	// Metadata waited for the produce before it, so the data is there.
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Version = 7
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "fire"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = -1
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	if off := c.roundTrip(lo).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].Offset; off != 4 {
		t.Fatalf("end offset %d after an acks=0 batch of 4, want 4", off)
	}
	// A refused acks=0 batch closes the connection so the client notices.
	c.send(produceRequest(t, "nope", 0, 0, batchOf(t, 1)))
	c.expectClosed()
}

func TestIdempotentProduceOverTheWire(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.dial(t)
	createTopic(t, c, "seq", 1)
	init := kmsg.NewPtrInitProducerIDRequest()
	init.Version = 4
	init.ProducerID, init.ProducerEpoch = -1, -1
	ir := c.roundTrip(init).(*kmsg.InitProducerIDResponse)
	if ir.ErrorCode != 0 || ir.ProducerID < 0 || ir.ProducerEpoch != 0 {
		t.Fatalf("InitProducerID: error %d, id %d, epoch %d", ir.ErrorCode, ir.ProducerID, ir.ProducerEpoch)
	}
	// A retry is the same batch, byte for byte (its CRC and timestamps
	// too): each batch is made once and kept.
	sent := map[[2]int]([]byte){}
	batch := func(seq int32, n int) []byte {
		k := [2]int{int(seq), n}
		if sent[k] == nil {
			sent[k] = producerBatch(t, n, record.CodecNone, &record.Producer{ID: ir.ProducerID, Epoch: 0, BaseSequence: seq})
		}
		return sent[k]
	}
	for _, step := range []struct {
		name     string
		seq      int32
		n        int
		code     *kerr.Error
		wantBase int64
	}{
		{"first batch", 0, 3, nil, 0},
		{"next batch", 3, 2, nil, 3},
		{"retry of the first is answered with its offset", 0, 3, nil, 0},
		{"a gap", 9, 1, kerr.OutOfOrderSequenceNumber, -1},
		{"in order again", 5, 1, nil, 5},
	} {
		code, base := produceCode(t, c, produceRequest(t, "seq", 0, -1, batch(step.seq, step.n)))
		want := int16(0)
		if step.code != nil {
			want = step.code.Code
		}
		if code != want || base != step.wantBase {
			t.Fatalf("%s: error %d base %d, want error %d base %d", step.name, code, base, want, step.wantBase)
		}
	}
	// An idempotent producer presenting its ID and epoch (KIP-360) gets a
	// new ID, as on Kafka: presenting someone else's ID must not let it
	// fence that producer by bumping its epoch.
	init.ProducerID, init.ProducerEpoch = ir.ProducerID, 0
	if r := c.roundTrip(init).(*kmsg.InitProducerIDResponse); r.ProducerID == ir.ProducerID || r.ProducerID < 0 || r.ProducerEpoch != 0 {
		t.Fatalf("re-init: id %d epoch %d, want a new ID (not %d) at epoch 0", r.ProducerID, r.ProducerEpoch, ir.ProducerID)
	}
	txn := "txn"
	init.TransactionalID = &txn
	if r := c.roundTrip(init).(*kmsg.InitProducerIDResponse); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("a transactional ID: error %d, want INVALID_REQUEST", r.ErrorCode)
	}
}

// TestABatchUnderAProducerIDNotIssuedToTheClientIsRefused is the Kafka
// hijack of issue 15: a raw batch with another producer's ID (then a small
// sequential number) and its next sequence made that producer's next
// record "acknowledged" at an offset that held the stranger's bytes. An ID
// is now issued to a role and cannot be guessed: a batch naming one not
// issued to the client is UNKNOWN_PRODUCER_ID and stores nothing, while
// the producer's own batches go on.
func TestABatchUnderAProducerIDNotIssuedToTheClientIsRefused(t *testing.T) {
	ts := newTestServer(t)
	c := ts.dial(t)
	createTopic(t, c, "hijack", 1)
	init := kmsg.NewPtrInitProducerIDRequest()
	init.Version = 4
	initResp := c.roundTrip(init).(*kmsg.InitProducerIDResponse)
	if initResp.ErrorCode != 0 {
		t.Fatalf("InitProducerId: error %d", initResp.ErrorCode)
	}
	pid := initResp.ProducerID
	produce := func(c *rawConn, id int64, seq int32) int16 {
		t.Helper()
		resp := c.roundTrip(produceRequest(t, "hijack", 0, -1, producerBatch(t, 1, record.CodecNone,
			&record.Producer{ID: id, BaseSequence: seq}))).(*kmsg.ProduceResponse)
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	if code := produce(c, pid, 0); code != 0 {
		t.Fatalf("the producer's first batch: error %d", code)
	}
	// Each guess is answered, then its connection closed (and its source
	// slowed down as after a failed login).
	for _, forged := range []int64{pid + 1, pid ^ 1, 1, 2} {
		stranger := ts.dial(t)
		if code := produce(stranger, forged, 1); code != kerr.UnknownProducerID.Code {
			t.Fatalf("a batch under producer id %d, never issued: error %d, want UNKNOWN_PRODUCER_ID", forged, code)
		}
		stranger.expectClosed()
	}
	if code := produce(c, pid, 1); code != 0 {
		t.Fatalf("the producer's next batch: error %d", code)
	}
	ctx := ctxT(t)
	name, err := ts.s.topicName("hijack")
	if err != nil {
		t.Fatal(err)
	}
	if _, end, err := ts.b.PartitionOffsets(ctx, name, 0); err != nil || end != 2 {
		t.Fatalf("end offset %d, %v; want 2: the producer's two records only", end, err)
	}
}

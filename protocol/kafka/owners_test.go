package kafka

import (
	"net"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/metadata/metadatatest"
)

// ownedServers starts two brokers with bundle ownership over shared
// stores, each with a Kafka server on a loopback port it registers.
func ownedServers(t *testing.T) []*testServer {
	t.Helper()
	meta := metadatatest.NewStore()
	t.Cleanup(func() { meta.Close() })
	shards := bookie.OneShard("s1", bookietest.NewFake())
	var out []*testServer
	for range 2 {
		b, err := broker.New(broker.DefaultConfig(), meta, shards, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig()
		s, err := NewServer(cfg, b, nil)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		if err := b.StartOwnership(ctxT(t), broker.Advertised{Native: addr + "-native", Kafka: addr}); err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- s.Serve(ln) }()
		t.Cleanup(func() {
			s.Close()
			<-served
			b.Close()
		})
		out = append(out, &testServer{s: s, b: b, addr: addr})
	}
	return out
}

func TestMetadataLeadersAreBundleOwnersAndOthersRedirect(t *testing.T) {
	ts := ownedServers(t)
	c0 := ts[0].dial(t)
	createTopic(t, c0, "spread", 16)

	req := kmsg.NewPtrMetadataRequest()
	req.Version = 9
	rt := kmsg.NewMetadataRequestTopic()
	name := "spread"
	rt.Topic = &name
	req.Topics = []kmsg.MetadataRequestTopic{rt}
	resp := c0.roundTrip(req).(*kmsg.MetadataResponse)
	if len(resp.Brokers) != 2 {
		t.Fatalf("metadata lists %d brokers, want 2", len(resp.Brokers))
	}
	byNode := map[int32]*testServer{}
	for _, b := range resp.Brokers {
		for _, s := range ts {
			if net.JoinHostPort(b.Host, portStr(b.Port)) == s.addr {
				byNode[b.NodeID] = s
			}
		}
	}
	if len(byNode) != 2 {
		t.Fatalf("brokers %+v do not match the two servers", resp.Brokers)
	}
	topicName := broker.TopicName{Tenant: "public", Namespace: "default", Topic: "spread"}
	led := map[int32]int{}
	for _, p := range resp.Topics[0].Partitions {
		leader := byNode[p.Leader]
		if leader == nil {
			t.Fatalf("partition %d: leader %d is not a listed broker", p.Partition, p.Leader)
		}
		led[p.Leader]++
		owner, err := ts[1].b.Owner(ctxT(t), topicName, p.Partition)
		if err != nil || owner.KafkaAddr != leader.addr {
			t.Fatalf("partition %d: leader %s, owner %+v (%v)", p.Partition, leader.addr, owner, err)
		}
		// Produce to the leader succeeds; to the other broker it is
		// NOT_LEADER_OR_FOLLOWER.
		other := ts[0]
		if other == leader {
			other = ts[1]
		}
		for _, tc := range []struct {
			s    *testServer
			code int16
		}{{leader, 0}, {other, kerr.NotLeaderForPartition.Code}} {
			pr := tc.s.dial(t).roundTrip(produceRequest(t, "spread", p.Partition, -1, batchOf(t, 1))).(*kmsg.ProduceResponse)
			if got := pr.Topics[0].Partitions[0].ErrorCode; got != tc.code {
				t.Fatalf("produce of partition %d to %s: code %d, want %d", p.Partition, tc.s.addr, got, tc.code)
			}
		}
	}
	if len(led) != 2 {
		t.Fatalf("16 partitions led by %d broker(s), want both", len(led))
	}
}

func TestGroupCoordinatorIsTheOwnerOfTheGroupsBundle(t *testing.T) {
	ts := ownedServers(t)
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.Version = 3
	fc.CoordinatorKey = "g1"
	resp := ts[0].dial(t).roundTrip(fc).(*kmsg.FindCoordinatorResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("FindCoordinator: code %d", resp.ErrorCode)
	}
	addr := net.JoinHostPort(resp.Host, portStr(resp.Port))
	coord, other := ts[0], ts[1]
	if ts[1].addr == addr {
		coord, other = ts[1], ts[0]
	} else if ts[0].addr != addr {
		t.Fatalf("coordinator %s is neither server", addr)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version = 3
	hb.Group, hb.MemberID, hb.Generation = "g1", "m", 1
	if got := other.dial(t).roundTrip(hb).(*kmsg.HeartbeatResponse).ErrorCode; got != kerr.NotCoordinator.Code {
		t.Fatalf("heartbeat on the other broker: code %d, want NOT_COORDINATOR", got)
	}
	if got := coord.dial(t).roundTrip(hb).(*kmsg.HeartbeatResponse).ErrorCode; got == kerr.NotCoordinator.Code {
		t.Fatal("heartbeat on the coordinator: NOT_COORDINATOR")
	}
}

func portStr(p int32) string { return strconv.Itoa(int(p)) }

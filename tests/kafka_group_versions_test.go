package tests

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupMember is one member of a one-member group, driven at exact
// versions over a raw connection.
type groupMember struct {
	rc         *rawKafkaConn
	group      string
	memberID   string
	generation int32
}

// join joins group alone at JoinGroup version v, answering
// MEMBER_ID_REQUIRED (v4 and later) by joining again with the ID given,
// and checks that it leads a group of one with its own metadata.
func (m *groupMember) join(t *testing.T, v int16, metadata []byte) {
	t.Helper()
	for range 2 {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version, req.Group, req.MemberID = v, m.group, m.memberID
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis, req.ProtocolType = 10000, 10000, "consumer"
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", metadata
		req.Protocols = append(req.Protocols, p)
		resp := m.rc.roundTrip(req).(*kmsg.JoinGroupResponse)
		if resp.ErrorCode == kerr.MemberIDRequired.Code && m.memberID == "" && v >= 4 {
			m.memberID = resp.MemberID
			continue
		}
		if resp.ErrorCode != 0 {
			t.Fatalf("JoinGroup v%d: %s", v, errorName(resp.ErrorCode))
		}
		if resp.MemberID == "" || resp.LeaderID != resp.MemberID || len(resp.Members) != 1 || !bytes.Equal(resp.Members[0].ProtocolMetadata, metadata) {
			t.Fatalf("JoinGroup v%d: member %q leader %q, %d members; want to lead a group of one with its metadata", v, resp.MemberID, resp.LeaderID, len(resp.Members))
		}
		if v >= 7 && (resp.Protocol == nil || *resp.Protocol != "range" || resp.ProtocolType == nil || *resp.ProtocolType != "consumer") {
			t.Fatalf("JoinGroup v%d: protocol %v type %v, want range, consumer", v, resp.Protocol, resp.ProtocolType)
		}
		m.memberID, m.generation = resp.MemberID, resp.Generation
		return
	}
	t.Fatalf("JoinGroup v%d: MEMBER_ID_REQUIRED twice", v)
}

// sync sends the leader's assignment at SyncGroup version v and checks
// that it comes back.
func (m *groupMember) sync(t *testing.T, v int16) {
	t.Helper()
	assignment := []byte("assignment of " + m.memberID)
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version, req.Group, req.Generation, req.MemberID = v, m.group, m.generation, m.memberID
	req.ProtocolType, req.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	a := kmsg.NewSyncGroupRequestGroupAssignment()
	a.MemberID, a.MemberAssignment = m.memberID, assignment
	req.GroupAssignment = append(req.GroupAssignment, a)
	resp := m.rc.roundTrip(req).(*kmsg.SyncGroupResponse)
	if resp.ErrorCode != 0 || !bytes.Equal(resp.MemberAssignment, assignment) {
		t.Fatalf("SyncGroup v%d: %s, assignment %q; want %q", v, errorName(resp.ErrorCode), resp.MemberAssignment, assignment)
	}
}

func (m *groupMember) heartbeat(t *testing.T, v int16) {
	t.Helper()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version, req.Group, req.Generation, req.MemberID = v, m.group, m.generation, m.memberID
	if resp := m.rc.roundTrip(req).(*kmsg.HeartbeatResponse); resp.ErrorCode != 0 {
		t.Fatalf("Heartbeat v%d: %s", v, errorName(resp.ErrorCode))
	}
}

func (m *groupMember) leave(t *testing.T, v int16) {
	t.Helper()
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version, req.Group, req.MemberID = v, m.group, m.memberID
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = m.memberID
	req.Members = append(req.Members, lm)
	resp := m.rc.roundTrip(req).(*kmsg.LeaveGroupResponse)
	if resp.ErrorCode != 0 || (v >= 3 && (len(resp.Members) != 1 || resp.Members[0].ErrorCode != 0 || resp.Members[0].MemberID != m.memberID)) {
		t.Fatalf("LeaveGroup v%d: %s, members %+v", v, errorName(resp.ErrorCode), resp.Members)
	}
}

// commit commits offset for partition 0 of topic at OffsetCommit version
// v, as the member.
func (m *groupMember) commit(t *testing.T, v int16, topic string, offset int64) {
	t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.Generation, req.MemberID = v, m.group, m.generation, m.memberID
	req.RetentionTimeMillis = -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset, rp.Metadata = 0, offset, kmsg.StringPtr("meta")
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := m.rc.roundTrip(req).(*kmsg.OffsetCommitResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("OffsetCommit v%d: %+v", v, resp.Topics)
	}
}

// fetchOffset returns the group's committed offset of partition 0 of
// topic, asked at OffsetFetch version v (v8 and later ask by groups).
func (m *groupMember) fetchOffset(t *testing.T, v int16, topic string) int64 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = v
	if v < 8 {
		req.Group = m.group
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{0}
		req.Topics = append(req.Topics, rt)
		resp := m.rc.roundTrip(req).(*kmsg.OffsetFetchResponse)
		if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("OffsetFetch v%d: %s, %+v", v, errorName(resp.ErrorCode), resp.Topics)
		}
		return resp.Topics[0].Partitions[0].Offset
	}
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group = m.group
	gt := kmsg.NewOffsetFetchRequestGroupTopic()
	gt.Topic, gt.Partitions = topic, []int32{0}
	g.Topics = append(g.Topics, gt)
	req.Groups = append(req.Groups, g)
	resp := m.rc.roundTrip(req).(*kmsg.OffsetFetchResponse)
	if len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 || len(resp.Groups[0].Topics) != 1 ||
		len(resp.Groups[0].Topics[0].Partitions) != 1 || resp.Groups[0].Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("OffsetFetch v%d: %+v", v, resp.Groups)
	}
	return resp.Groups[0].Topics[0].Partitions[0].Offset
}

// TestKafkaEveryAdvertisedVersionOfTheGroupAPIsAnswers drives a group of
// one member through each group API at every version ApiVersions
// advertises (the others at their newest), over a raw connection, the way
// clients pinned to old versions do (kafka-go sends Heartbeat, SyncGroup
// and LeaveGroup v0, OffsetCommit v2, OffsetFetch v1): join, sync,
// heartbeat, commit, fetch the commit, describe, list, leave and delete
// all succeed and decode at that version.
func TestKafkaEveryAdvertisedVersionOfTheGroupAPIsAnswers(t *testing.T) {
	_, addr := startKafkaServer(t)
	rc := dialRawKafka(t, addr)
	if _, ok := servedKafkaAPIs(testContext(t, time.Minute), t, addr)[int16(kmsg.JoinGroup)]; !ok {
		t.Fatal("the server does not advertise JoinGroup: consumer groups are served")
	}
	newest := map[kmsg.Key]int16{}
	for _, k := range []kmsg.Key{kmsg.JoinGroup, kmsg.SyncGroup, kmsg.Heartbeat, kmsg.LeaveGroup, kmsg.OffsetCommit, kmsg.OffsetFetch} {
		_, newest[k] = advertised(t, rc, k)
	}
	const topic = "group-versions"
	md := kmsg.NewPtrMetadataRequest() // auto-creates the topic commits name
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	md.Topics, md.AllowAutoTopicCreation = append(md.Topics, mt), true
	md.Version = 12
	rc.roundTrip(md)

	sweep := func(key kmsg.Key, do func(t *testing.T, v int16, m *groupMember)) {
		lo, hi := advertised(t, rc, key)
		for v := lo; v <= hi; v++ {
			name := fmt.Sprintf("%s-v%d", kmsg.NameForKey(int16(key)), v)
			t.Run(name, func(t *testing.T) { do(t, v, &groupMember{rc: rc, group: name}) })
		}
	}
	sweep(kmsg.JoinGroup, func(t *testing.T, v int16, m *groupMember) {
		m.join(t, v, []byte("metadata"))
		m.sync(t, newest[kmsg.SyncGroup])
		m.heartbeat(t, newest[kmsg.Heartbeat])
		m.leave(t, newest[kmsg.LeaveGroup])
	})
	sweep(kmsg.SyncGroup, func(t *testing.T, v int16, m *groupMember) {
		m.join(t, newest[kmsg.JoinGroup], []byte("metadata"))
		m.sync(t, v)
		m.leave(t, newest[kmsg.LeaveGroup])
	})
	sweep(kmsg.Heartbeat, func(t *testing.T, v int16, m *groupMember) {
		m.join(t, newest[kmsg.JoinGroup], []byte("metadata"))
		m.sync(t, newest[kmsg.SyncGroup])
		m.heartbeat(t, v)
		m.leave(t, newest[kmsg.LeaveGroup])
	})
	sweep(kmsg.LeaveGroup, func(t *testing.T, v int16, m *groupMember) {
		m.join(t, newest[kmsg.JoinGroup], []byte("metadata"))
		m.sync(t, newest[kmsg.SyncGroup])
		m.leave(t, v)
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = []string{m.group}
		resp := rc.roundTrip(req).(*kmsg.DescribeGroupsResponse)
		// No member and nothing committed: Kafka says Empty until its
		// cleanup runs, Magnetar Dead at once; either way, no members.
		if g := resp.Groups; len(g) != 1 || g[0].ErrorCode != 0 || (g[0].State != "Empty" && g[0].State != "Dead") || len(g[0].Members) != 0 {
			t.Fatalf("DescribeGroups after LeaveGroup v%d: %+v, want no members", v, g)
		}
	})
	sweep(kmsg.OffsetCommit, func(t *testing.T, v int16, m *groupMember) {
		m.join(t, newest[kmsg.JoinGroup], []byte("metadata"))
		m.sync(t, newest[kmsg.SyncGroup])
		m.commit(t, v, topic, int64(v)+10)
		if got := m.fetchOffset(t, newest[kmsg.OffsetFetch], topic); got != int64(v)+10 {
			t.Fatalf("committed %d with OffsetCommit v%d, fetched %d", v+10, v, got)
		}
		m.leave(t, newest[kmsg.LeaveGroup])
	})
	sweep(kmsg.OffsetFetch, func(t *testing.T, v int16, m *groupMember) {
		m.join(t, newest[kmsg.JoinGroup], []byte("metadata"))
		m.sync(t, newest[kmsg.SyncGroup])
		m.commit(t, newest[kmsg.OffsetCommit], topic, 42)
		m.leave(t, newest[kmsg.LeaveGroup])
		if got := m.fetchOffset(t, v, topic); got != 42 {
			t.Fatalf("OffsetFetch v%d: %d, want 42", v, got)
		}
	})
	sweep(kmsg.FindCoordinator, func(t *testing.T, v int16, m *groupMember) {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.Version, req.CoordinatorKey, req.CoordinatorKeys = v, m.group, []string{m.group}
		resp := rc.roundTrip(req).(*kmsg.FindCoordinatorResponse)
		code, port := resp.ErrorCode, resp.Port
		if v >= 4 {
			if len(resp.Coordinators) != 1 {
				t.Fatalf("%d coordinators, want 1", len(resp.Coordinators))
			}
			code, port = resp.Coordinators[0].ErrorCode, resp.Coordinators[0].Port
		}
		if code != 0 || port <= 0 {
			t.Fatalf("%s, port %d", errorName(code), port)
		}
	})
	// The groups the sweeps left behind with commits are empty: each
	// version of the listing, describing and deleting APIs sees them.
	sweep(kmsg.ListGroups, func(t *testing.T, v int16, _ *groupMember) {
		req := kmsg.NewPtrListGroupsRequest()
		req.Version = v
		resp := rc.roundTrip(req).(*kmsg.ListGroupsResponse)
		if resp.ErrorCode != 0 || len(resp.Groups) == 0 {
			t.Fatalf("%s, %d groups", errorName(resp.ErrorCode), len(resp.Groups))
		}
	})
	sweep(kmsg.DescribeGroups, func(t *testing.T, v int16, _ *groupMember) {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Version, req.Groups = v, []string{"OffsetCommit-v2"}
		resp := rc.roundTrip(req).(*kmsg.DescribeGroupsResponse)
		if len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 || resp.Groups[0].State != "Empty" {
			t.Fatalf("%+v", resp.Groups)
		}
	})
	sweep(kmsg.DeleteGroups, func(t *testing.T, v int16, _ *groupMember) {
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Version, req.Groups = v, []string{fmt.Sprintf("OffsetFetch-v%d", v+1)}
		resp := rc.roundTrip(req).(*kmsg.DeleteGroupsResponse)
		if len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 {
			t.Fatalf("%+v", resp.Groups)
		}
	})
}

package kafka

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// These tests drive the group coordinator by hand, request by request,
// to check each state transition and error code a client depends on.

func fastGroups(c *Config) {
	c.GroupMinSessionTimeout = 100 * time.Millisecond
}

func joinReq(group, member string, instance *string, meta string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 7
	req.Group, req.MemberID, req.InstanceID = group, member, instance
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 5000
	req.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", []byte(meta)
	req.Protocols = append(req.Protocols, p)
	return req
}

// join sends a JoinGroup on its own connection (it may wait) and returns
// the channel of its response.
func join(t *testing.T, ts *testServer, req *kmsg.JoinGroupRequest) <-chan *kmsg.JoinGroupResponse {
	c := ts.dial(t)
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	corr := c.send(req)
	go func() { ch <- c.read(req, corr).(*kmsg.JoinGroupResponse) }()
	return ch
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatal("no response")
		panic("unreachable")
	}
}

// joinNew joins as a new dynamic member: MEMBER_ID_REQUIRED, then a join
// with the ID handed out.
func joinNew(t *testing.T, ts *testServer, group, meta string) (string, <-chan *kmsg.JoinGroupResponse) {
	t.Helper()
	first := recv(t, join(t, ts, joinReq(group, "", nil, meta)))
	if first.ErrorCode != kerr.MemberIDRequired.Code || first.MemberID == "" {
		t.Fatalf("first join: code %d member %q, want MEMBER_ID_REQUIRED and an ID", first.ErrorCode, first.MemberID)
	}
	return first.MemberID, join(t, ts, joinReq(group, first.MemberID, nil, meta))
}

func syncReq(group, member string, gen int32, assign map[string]string) *kmsg.SyncGroupRequest {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group, req.MemberID, req.Generation = group, member, gen
	pt, p := "consumer", "range"
	req.ProtocolType, req.Protocol = &pt, &p
	for m, a := range assign {
		ga := kmsg.NewSyncGroupRequestGroupAssignment()
		ga.MemberID, ga.MemberAssignment = m, []byte(a)
		req.GroupAssignment = append(req.GroupAssignment, ga)
	}
	return req
}

func heartbeat(c *rawConn, group, member string, gen int32) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group, req.MemberID, req.Generation = group, member, gen
	return c.roundTrip(req).(*kmsg.HeartbeatResponse).ErrorCode
}

// Two members join: the join waits for both, one is leader and sees both
// members' metadata, the leader's SyncGroup hands each its assignment.
// A third member's join puts the others' heartbeats into
// REBALANCE_IN_PROGRESS; old generations are refused; a member whose
// session lapses is removed and the group rebalances without it.
func TestGroupJoinSyncHeartbeatRebalanceAndExpiry(t *testing.T) {
	ts := newTestServer(t, fastGroups)
	c := ts.dial(t)

	a, aJoin := joinNew(t, ts, "g", "meta-a")
	ra := recv(t, aJoin)
	if ra.ErrorCode != 0 || ra.LeaderID != a || ra.Generation != 1 || len(ra.Members) != 1 {
		t.Fatalf("a alone: %+v", ra)
	}
	// b joins: a must rejoin (heartbeat says so), then both get generation 2.
	b, bJoin := joinNew(t, ts, "g", "meta-b")
	waitFor(t, "a's heartbeat to say REBALANCE_IN_PROGRESS", func() bool {
		code := heartbeat(c, "g", a, 1)
		if code != 0 && code != kerr.RebalanceInProgress.Code {
			t.Fatalf("a's heartbeat: %d", code)
		}
		return code == kerr.RebalanceInProgress.Code
	})
	ra = recv(t, join(t, ts, joinReq("g", a, nil, "meta-a")))
	rb := recv(t, bJoin)
	if ra.ErrorCode != 0 || rb.ErrorCode != 0 || ra.Generation != 2 || rb.Generation != 2 {
		t.Fatalf("rejoin: a %+v b %+v", ra, rb)
	}
	if ra.LeaderID != a || rb.LeaderID != a || len(ra.Members) != 2 || len(rb.Members) != 0 ||
		string(ra.Members[0].ProtocolMetadata) != "meta-a" || string(ra.Members[1].ProtocolMetadata) != "meta-b" ||
		*ra.Protocol != "range" {
		t.Fatalf("leader's view: %+v; follower's: %+v", ra, rb)
	}

	// b's SyncGroup waits for the leader's.
	cb := ts.dial(t)
	sb := syncReq("g", b, 2, nil)
	corr := cb.send(sb)
	bSync := make(chan *kmsg.SyncGroupResponse, 1)
	go func() { bSync <- cb.read(sb, corr).(*kmsg.SyncGroupResponse) }()
	sa := c.roundTrip(syncReq("g", a, 2, map[string]string{a: "parts-a", b: "parts-b"})).(*kmsg.SyncGroupResponse)
	if sa.ErrorCode != 0 || string(sa.MemberAssignment) != "parts-a" {
		t.Fatalf("leader's sync: %+v", sa)
	}
	if r := recv(t, bSync); r.ErrorCode != 0 || string(r.MemberAssignment) != "parts-b" {
		t.Fatalf("follower's sync: %+v", r)
	}
	if code := heartbeat(c, "g", a, 2); code != 0 {
		t.Fatalf("stable heartbeat: %d", code)
	}
	if code := heartbeat(c, "g", a, 1); code != kerr.IllegalGeneration.Code {
		t.Fatalf("heartbeat of generation 1: %d, want ILLEGAL_GENERATION", code)
	}
	if code := heartbeat(c, "g", "nobody", 2); code != kerr.UnknownMemberID.Code {
		t.Fatalf("unknown member's heartbeat: %d, want UNKNOWN_MEMBER_ID", code)
	}

}

// A member whose session lapses (no heartbeat) is removed: the others are
// told to rejoin and the next generation is without it.
func TestGroupMemberWhoseSessionLapsesIsRemoved(t *testing.T) {
	ts := newTestServer(t, fastGroups)
	c := ts.dial(t)
	y, yJoin := joinNew(t, ts, "e", "y")
	if r := recv(t, yJoin); r.ErrorCode != 0 || r.LeaderID != y {
		t.Fatalf("y alone: %+v", r)
	}
	first := recv(t, join(t, ts, joinReq("e", "", nil, "x")))
	short := joinReq("e", first.MemberID, nil, "x")
	short.SessionTimeoutMillis = 1000
	xJoin := join(t, ts, short)
	waitFor(t, "y to be told to rejoin", func() bool { return heartbeat(c, "e", y, 1) == kerr.RebalanceInProgress.Code })
	ry := recv(t, join(t, ts, joinReq("e", y, nil, "y")))
	if rx := recv(t, xJoin); rx.ErrorCode != 0 || ry.Generation != 2 || len(ry.Members) != 2 {
		t.Fatalf("generation 2: y %+v x %+v", ry, rx)
	}
	if r := c.roundTrip(syncReq("e", y, 2, map[string]string{y: "0", first.MemberID: "1"})).(*kmsg.SyncGroupResponse); r.ErrorCode != 0 {
		t.Fatalf("sync of generation 2: %d", r.ErrorCode)
	}
	// x never heartbeats.
	waitFor(t, "x's session to lapse", func() bool { return heartbeat(c, "e", y, 2) == kerr.RebalanceInProgress.Code })
	ry = recv(t, join(t, ts, joinReq("e", y, nil, "y")))
	if ry.ErrorCode != 0 || ry.Generation != 3 || len(ry.Members) != 1 || ry.Members[0].MemberID != y {
		t.Fatalf("after x expired: %+v", ry)
	}
}

// A static member (group.instance.id) that restarts gets a new member ID
// and its old place without a rebalance; the old ID is fenced.
func TestStaticMemberRejoinsWithoutRebalance(t *testing.T) {
	ts := newTestServer(t)
	c := ts.dial(t)
	inst := "pod-1"
	r := recv(t, join(t, ts, joinReq("s", "", &inst, "m")))
	if r.ErrorCode != 0 || r.Generation != 1 {
		t.Fatalf("static join: %+v", r)
	}
	old := r.MemberID
	if s := c.roundTrip(syncReq("s", old, 1, map[string]string{old: "p0"})).(*kmsg.SyncGroupResponse); s.ErrorCode != 0 {
		t.Fatalf("sync: %d", s.ErrorCode)
	}
	r = recv(t, join(t, ts, joinReq("s", "", &inst, "m")))
	if r.ErrorCode != 0 || r.Generation != 1 || r.MemberID == old {
		t.Fatalf("static rejoin: %+v, want generation 1 under a new ID", r)
	}
	sync := syncReq("s", r.MemberID, 1, nil)
	sync.InstanceID = &inst
	if s := c.roundTrip(sync).(*kmsg.SyncGroupResponse); s.ErrorCode != 0 || string(s.MemberAssignment) != "p0" {
		t.Fatalf("rejoined member's sync: %+v, want its old assignment", s)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version, hb.Group, hb.MemberID, hb.Generation, hb.InstanceID = 4, "s", old, 1, &inst
	if code := c.roundTrip(hb).(*kmsg.HeartbeatResponse).ErrorCode; code != kerr.FencedInstanceID.Code {
		t.Fatalf("old ID's heartbeat: %d, want FENCED_INSTANCE_ID", code)
	}
}

// Offsets committed from outside a group (generation -1) are stored as
// the group's subscription cursors: OffsetFetch returns them (also for
// "every topic"), partitions without a commit are -1, ListGroups and
// DescribeGroups show the group as Empty, and DeleteGroups removes it.
// A commit with a stale generation from a member is refused.
func TestOffsetCommitFetchListDescribeDelete(t *testing.T) {
	ts := newTestServer(t)
	c := ts.dial(t)
	createTopic(t, c, "t", 3)
	ctx := ctxT(t)

	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version, commit.Group, commit.Generation = 8, "g", -1
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = "t"
	for p, off := range map[int32]int64{0: 5, 2: 9, 7: 1} {
		cp := kmsg.NewOffsetCommitRequestTopicPartition()
		md := "md"
		cp.Partition, cp.Offset, cp.Metadata = p, off, &md
		ct.Partitions = append(ct.Partitions, cp)
	}
	commit.Topics = append(commit.Topics, ct)
	cr := c.roundTrip(commit).(*kmsg.OffsetCommitResponse)
	for _, p := range cr.Topics[0].Partitions {
		want := int16(0)
		if p.Partition == 7 {
			want = kerr.UnknownTopicOrPartition.Code
		}
		if p.ErrorCode != want {
			t.Fatalf("commit of partition %d: %d, want %d", p.Partition, p.ErrorCode, want)
		}
	}
	name, _ := ts.s.topicName("t")
	if cm, ok, err := ts.b.CommittedOffset(ctx, name, 2, "g"); err != nil || !ok || cm.Offset != 9 {
		t.Fatalf("subscription g on t-2: %+v %v %v, want offset 9", cm, ok, err)
	}

	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Version, fetch.Group = 7, "g"
	ft := kmsg.NewOffsetFetchRequestTopic()
	ft.Topic, ft.Partitions = "t", []int32{0, 1, 2}
	fetch.Topics = append(fetch.Topics, ft)
	fr := c.roundTrip(fetch).(*kmsg.OffsetFetchResponse)
	got := map[int32]int64{}
	for _, p := range fr.Topics[0].Partitions {
		got[p.Partition] = p.Offset
	}
	if fr.ErrorCode != 0 || got[0] != 5 || got[1] != -1 || got[2] != 9 {
		t.Fatalf("offset fetch: %+v", fr)
	}
	all := kmsg.NewPtrOffsetFetchRequest()
	all.Version = 8
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = "g"
	all.Groups = append(all.Groups, rg)
	ar := c.roundTrip(all).(*kmsg.OffsetFetchResponse)
	if len(ar.Groups) != 1 || len(ar.Groups[0].Topics) != 1 || len(ar.Groups[0].Topics[0].Partitions) != 2 ||
		*ar.Groups[0].Topics[0].Partitions[0].Metadata != "md" {
		t.Fatalf("offset fetch of every topic: %+v", ar)
	}

	lg := kmsg.NewPtrListGroupsRequest()
	lg.Version = 4
	lr := c.roundTrip(lg).(*kmsg.ListGroupsResponse)
	if len(lr.Groups) != 1 || lr.Groups[0].Group != "g" || lr.Groups[0].GroupState != stateEmpty {
		t.Fatalf("list groups: %+v", lr.Groups)
	}
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Version, dg.Groups = 5, []string{"g", "none"}
	dr := c.roundTrip(dg).(*kmsg.DescribeGroupsResponse)
	if dr.Groups[0].State != stateEmpty || dr.Groups[1].State != stateDead {
		t.Fatalf("describe groups: %+v", dr.Groups)
	}

	// A member of a live group commits with its generation only.
	m := recv(t, join(t, ts, joinReq("live", "m1", nil, "")))
	if m.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("join with an unknown member ID: %d, want UNKNOWN_MEMBER_ID", m.ErrorCode)
	}
	m1, j := joinNew(t, ts, "live", "")
	recv(t, j)
	stale := kmsg.NewPtrOffsetCommitRequest()
	stale.Version, stale.Group, stale.Generation, stale.MemberID = 8, "live", 0, m1
	stale.Topics = commit.Topics[:1]
	if code := c.roundTrip(stale).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode; code != kerr.IllegalGeneration.Code {
		t.Fatalf("commit of a stale generation: %d, want ILLEGAL_GENERATION", code)
	}
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Version, del.Groups = 2, []string{"g", "live", "none"}
	dl := c.roundTrip(del).(*kmsg.DeleteGroupsResponse)
	codes := map[string]int16{}
	for _, g := range dl.Groups {
		codes[g.Group] = g.ErrorCode
	}
	if codes["g"] != 0 || codes["live"] != kerr.NonEmptyGroup.Code || codes["none"] != kerr.GroupIDNotFound.Code {
		t.Fatalf("delete groups: %v", codes)
	}
	if _, ok, _ := ts.b.CommittedOffset(context.Background(), name, 2, "g"); ok {
		t.Fatal("the deleted group's cursor is still there")
	}
}

// Many members joining at once converge: whatever the number of
// rebalances on the way, every member ends in the same generation with
// the assignment the leader made for it, and the group stays stable.
func TestManyMembersConvergeOnOneGeneration(t *testing.T) {
	ts := newTestServer(t)
	const n = 25
	type state struct {
		gen    int32
		assign string
	}
	var mu sync.Mutex
	states := make(map[string]state)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			c := ts.dial(t)
			first := c.roundTrip(joinReq("many", "", nil, "")).(*kmsg.JoinGroupResponse)
			id := first.MemberID
			for {
				r := c.roundTrip(joinReq("many", id, nil, "")).(*kmsg.JoinGroupResponse)
				if r.ErrorCode != 0 {
					t.Errorf("join: %d", r.ErrorCode)
					return
				}
				assign := map[string]string{}
				for _, m := range r.Members { // the leader assigns each member its own ID
					assign[m.MemberID] = m.MemberID
				}
				s := c.roundTrip(syncReq("many", id, r.Generation, assign)).(*kmsg.SyncGroupResponse)
				if s.ErrorCode == kerr.RebalanceInProgress.Code {
					continue
				}
				if s.ErrorCode != 0 {
					t.Errorf("sync: %d", s.ErrorCode)
					return
				}
				mu.Lock()
				states[id] = state{r.Generation, string(s.MemberAssignment)}
				mu.Unlock()
				for { // heartbeat until told to rejoin or stopped
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
					if code := heartbeat(c, "many", id, r.Generation); code == kerr.RebalanceInProgress.Code {
						break
					} else if code != 0 {
						t.Errorf("heartbeat: %d", code)
						return
					}
				}
			}
		})
	}
	converged := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if len(states) != n {
			return false
		}
		var gen int32 = -1
		for id, s := range states {
			if s.assign != id || (gen != -1 && s.gen != gen) {
				return false
			}
			gen = s.gen
		}
		return true
	}
	waitFor(t, "every member in one generation with its own assignment", converged)
	close(stop)
	wg.Wait()
	v, ok := ts.s.co.view("many")
	if !ok || v.state != stateStable || len(v.members) != n {
		t.Fatalf("group after convergence: %s with %d members", v.state, len(v.members))
	}
}

// A transaction coordinator is refused with a code clients do not retry
// (transactions are not served), a group coordinator is this broker.
func TestFindCoordinator(t *testing.T) {
	ts := newTestServer(t)
	c := ts.dial(t)
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version, req.CoordinatorType, req.CoordinatorKeys = 4, 0, []string{"g1", ""}
	r := c.roundTrip(req).(*kmsg.FindCoordinatorResponse)
	if len(r.Coordinators) != 2 || r.Coordinators[0].ErrorCode != 0 || r.Coordinators[0].NodeID != nodeID ||
		r.Coordinators[1].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("group coordinators: %+v", r.Coordinators)
	}
	req.CoordinatorType, req.CoordinatorKeys = 1, []string{"txn"}
	r = c.roundTrip(req).(*kmsg.FindCoordinatorResponse)
	if code := r.Coordinators[0].ErrorCode; code != kerr.InvalidRequest.Code || kerr.IsRetriable(kerr.ErrorForCode(code)) {
		t.Fatalf("transaction coordinator: %d, want INVALID_REQUEST (not retriable)", code)
	}
}

// A group ID is a name like a subscription's (broker/names.go): one that
// is empty, too long or not printable is refused with INVALID_GROUP_ID
// before a group is made for it.
func TestJoinGroupRefusesBadGroupIDs(t *testing.T) {
	ts := newTestServer(t)
	c := ts.dial(t)
	for _, id := range []string{"", strings.Repeat("g", 300), "a\x00b", "a//b", "../x"} {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version = 5
		req.Group, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = id, 10000, 10000
		req.ProtocolType = "consumer"
		req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
		resp := c.roundTrip(req).(*kmsg.JoinGroupResponse)
		if resp.ErrorCode != kerr.InvalidGroupID.Code {
			t.Errorf("group %q: error %d, want INVALID_GROUP_ID", id[:min(len(id), 10)], resp.ErrorCode)
		}
	}
}

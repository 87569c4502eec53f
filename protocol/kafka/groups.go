package kafka

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The group coordinator: Kafka's classic consumer-group protocol.
//
// A group's membership lives in memory in the coordinator (this broker is
// every group's coordinator); what must survive a restart, the committed
// offsets, is durable in the broker as subscription cursors. After a
// restart members find their IDs unknown and rejoin, as they do after a
// coordinator move on Kafka.
//
// States follow Kafka's: Empty (no members), PreparingRebalance (waiting
// for every member to (re)join, bounded by the longest rebalance timeout),
// CompletingRebalance (joined; waiting for the leader's assignments) and
// Stable. A JoinGroup or SyncGroup that must wait parks a channel on its
// member; completing the phase answers every parked request. One mutex
// guards every group: the work under it is small and never blocks.

// Group states, named as DescribeGroups and ListGroups report them.
const (
	stateEmpty               = "Empty"
	statePreparingRebalance  = "PreparingRebalance"
	stateCompletingRebalance = "CompletingRebalance"
	stateStable              = "Stable"
	stateDead                = "Dead"
)

// joinResult is what a parked JoinGroup is answered with.
type joinResult struct {
	code         int16
	generation   int32
	protocolType string
	protocol     string
	leader       string
	memberID     string
	members      []kmsg.JoinGroupResponseMember // the leader's only
}

// syncResult is what a parked SyncGroup is answered with.
type syncResult struct {
	code       int16
	assignment []byte
}

type member struct {
	id, instanceID       string
	clientID, clientHost string
	protocols            []kmsg.JoinGroupRequestProtocol
	session, rebalance   time.Duration
	deadline             time.Time // of the session; not applied while awaiting a join
	joinSeq              uint64    // order of joining, to pick a leader
	assignment           []byte

	join chan joinResult // a parked JoinGroup (capacity 1), nil if none
	sync chan syncResult // a parked SyncGroup (capacity 1), nil if none
}

type group struct {
	name         string
	state        string
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*member
	instances    map[string]string    // static member instance ID -> member ID
	pending      map[string]time.Time // member IDs handed out by MEMBER_ID_REQUIRED -> expiry
	rebalanceBy  time.Time            // PreparingRebalance: when to complete without stragglers
	notBefore    time.Time            // PreparingRebalance from Empty: the initial delay
	topics       map[string]bool      // topics known to be in the group's durable row
}

// coordinator holds every group of the server.
type coordinator struct {
	cfg Config

	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	groups  map[string]*group
	joinSeq uint64
}

func newCoordinator(cfg Config) *coordinator {
	co := &coordinator{cfg: cfg, stop: make(chan struct{}), done: make(chan struct{}), groups: make(map[string]*group)}
	go co.expireLoop()
	return co
}

// close stops the expiry loop and waits for it.
func (co *coordinator) close() {
	close(co.stop)
	<-co.done
}

// expireTick is how often sessions and rebalance timeouts are checked.
const expireTick = 100 * time.Millisecond

func (co *coordinator) expireLoop() {
	defer close(co.done)
	t := time.NewTicker(expireTick)
	defer t.Stop()
	for {
		select {
		case <-co.stop:
			return
		case now := <-t.C:
			co.expire(now)
		}
	}
}

// expire removes members whose session ended and completes rebalances
// whose time is up.
func (co *coordinator) expire(now time.Time) {
	co.mu.Lock()
	defer co.mu.Unlock()
	for _, g := range co.groups {
		for id, exp := range g.pending {
			if now.After(exp) {
				delete(g.pending, id)
			}
		}
		for _, m := range g.members {
			if m.join == nil && now.After(m.deadline) {
				co.removeMember(g, m)
			}
		}
		if g.state == statePreparingRebalance {
			co.tryCompleteJoin(g, now)
		}
		co.forgetIfEmpty(g)
	}
}

// forgetIfEmpty drops a group without members from memory; its offsets
// are durable in the broker.
func (co *coordinator) forgetIfEmpty(g *group) {
	if g.state == stateEmpty && len(g.members) == 0 && len(g.pending) == 0 {
		delete(co.groups, g.name)
	}
}

func (co *coordinator) group(name string, create bool) *group {
	g := co.groups[name]
	if g == nil && create {
		g = &group{name: name, state: stateEmpty, members: make(map[string]*member),
			instances: make(map[string]string), pending: make(map[string]time.Time), topics: make(map[string]bool)}
		co.groups[name] = g
	}
	return g
}

func newMemberID(clientID string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	if clientID == "" {
		clientID = "member"
	}
	return clientID + "-" + hex.EncodeToString(b[:])
}

// joinRequest is a JoinGroup's fields that the coordinator needs.
type joinRequest struct {
	group, memberID, instanceID string
	clientID, clientHost        string
	protocolType                string
	protocols                   []kmsg.JoinGroupRequestProtocol
	session, rebalance          time.Duration
	requireKnownID              bool // version 4+: a new dynamic member first gets MEMBER_ID_REQUIRED
}

// join handles a JoinGroup. It returns the answer at once, or a channel
// the answer will come on.
func (co *coordinator) join(r joinRequest) (joinResult, <-chan joinResult) {
	now := time.Now()
	co.mu.Lock()
	defer co.mu.Unlock()
	g := co.group(r.group, true)
	defer co.forgetIfEmpty(g)
	fail := func(code int16) (joinResult, <-chan joinResult) {
		return joinResult{code: code, memberID: r.memberID, generation: -1}, nil
	}
	if g.protocolType != "" && len(g.members) > 0 && (r.protocolType != g.protocolType || !co.supportedByAll(g, r.protocols)) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	var m *member
	switch {
	case r.memberID == "" && r.instanceID != "":
		if old, ok := g.members[g.instances[r.instanceID]]; ok {
			// A static member restarted: it takes over its old
			// identity and assignment under a new member ID.
			m = co.replaceStatic(g, old, newMemberID(r.clientID))
			if g.state == stateStable && slices.EqualFunc(m.protocols, r.protocols, sameProtocol) {
				m.deadline = now.Add(m.session)
				return co.joinAnswer(g, m), nil
			}
		}
	case r.memberID == "":
		id := newMemberID(r.clientID)
		if r.requireKnownID {
			g.pending[id] = now.Add(r.session)
			return joinResult{code: kerr.MemberIDRequired.Code, memberID: id, generation: -1}, nil
		}
		r.memberID = id
	default:
		if _, ok := g.pending[r.memberID]; ok {
			delete(g.pending, r.memberID)
			break
		}
		m = g.members[r.memberID]
		if m == nil {
			return fail(kerr.UnknownMemberID.Code)
		}
		if r.instanceID != "" && g.instances[r.instanceID] != m.id {
			return fail(kerr.FencedInstanceID.Code)
		}
		if g.state == stateStable && m.id != g.leader && slices.EqualFunc(m.protocols, r.protocols, sameProtocol) {
			// Nothing changed: the member gets the current generation.
			m.deadline = now.Add(m.session)
			return co.joinAnswer(g, m), nil
		}
	}
	if m == nil {
		if r.memberID == "" {
			r.memberID = newMemberID(r.clientID)
		}
		co.joinSeq++
		m = &member{id: r.memberID, instanceID: r.instanceID, joinSeq: co.joinSeq}
		g.members[m.id] = m
		if r.instanceID != "" {
			g.instances[r.instanceID] = m.id
		}
	}
	m.clientID, m.clientHost = r.clientID, r.clientHost
	m.protocols, m.session, m.rebalance = r.protocols, r.session, r.rebalance
	if m.join != nil {
		m.join <- joinResult{code: kerr.RebalanceInProgress.Code, memberID: m.id, generation: -1}
	}
	ch := make(chan joinResult, 1)
	m.join = ch
	g.protocolType = r.protocolType
	if g.state != statePreparingRebalance {
		co.prepareRebalance(g, now)
	}
	co.tryCompleteJoin(g, now)
	return joinResult{}, ch
}

func sameProtocol(a, b kmsg.JoinGroupRequestProtocol) bool {
	return a.Name == b.Name && slices.Equal(a.Metadata, b.Metadata)
}

// supportedByAll reports whether one of protocols is one every member
// supports.
func (co *coordinator) supportedByAll(g *group, protocols []kmsg.JoinGroupRequestProtocol) bool {
	for _, p := range protocols {
		all := true
		for _, m := range g.members {
			if !slices.ContainsFunc(m.protocols, func(q kmsg.JoinGroupRequestProtocol) bool { return q.Name == p.Name }) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// replaceStatic moves a static member to a new member ID; requests still
// parked under the old ID are fenced.
func (co *coordinator) replaceStatic(g *group, old *member, id string) *member {
	delete(g.members, old.id)
	if old.join != nil {
		old.join <- joinResult{code: kerr.FencedInstanceID.Code, memberID: old.id, generation: -1}
		old.join = nil
	}
	if old.sync != nil {
		old.sync <- syncResult{code: kerr.FencedInstanceID.Code}
		old.sync = nil
	}
	if g.leader == old.id {
		g.leader = id
	}
	old.id = id
	g.members[id] = old
	g.instances[old.instanceID] = id
	return old
}

// prepareRebalance starts a rebalance: every member must rejoin.
func (co *coordinator) prepareRebalance(g *group, now time.Time) {
	if g.state == stateCompletingRebalance {
		for _, m := range g.members {
			if m.sync != nil {
				m.sync <- syncResult{code: kerr.RebalanceInProgress.Code}
				m.sync = nil
			}
		}
	}
	var longest time.Duration
	for _, m := range g.members {
		longest = max(longest, m.rebalance)
	}
	if g.state == stateEmpty {
		g.notBefore = now.Add(co.cfg.GroupInitialRebalanceDelay)
	}
	g.state = statePreparingRebalance
	g.rebalanceBy = now.Add(longest)
}

// tryCompleteJoin ends the join phase once every member has rejoined (and
// the initial delay passed), or when the rebalance timeout is up, without
// the members that did not rejoin.
func (co *coordinator) tryCompleteJoin(g *group, now time.Time) {
	allJoined := len(g.pending) == 0
	for _, m := range g.members {
		if m.join == nil {
			allJoined = false
		}
	}
	timedOut := !now.Before(g.rebalanceBy)
	if !timedOut && (!allJoined || now.Before(g.notBefore)) {
		return
	}
	for _, m := range g.members {
		if m.join == nil {
			co.dropMember(g, m)
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.state, g.protocol, g.leader = stateEmpty, "", ""
		return
	}
	g.protocol = co.chooseProtocol(g)
	if _, ok := g.members[g.leader]; !ok {
		g.leader = ""
		for _, m := range g.members {
			if g.leader == "" || m.joinSeq < g.members[g.leader].joinSeq {
				g.leader = m.id
			}
		}
	}
	g.state = stateCompletingRebalance
	for _, m := range g.members {
		m.assignment = nil
		m.deadline = now.Add(m.session)
		m.join <- co.joinAnswer(g, m)
		m.join = nil
	}
}

// joinAnswer is the JoinGroup response of m in the current generation.
func (co *coordinator) joinAnswer(g *group, m *member) joinResult {
	res := joinResult{generation: g.generation, protocolType: g.protocolType, protocol: g.protocol, leader: g.leader, memberID: m.id}
	if m.id == g.leader {
		for _, o := range g.members {
			jm := kmsg.NewJoinGroupResponseMember()
			jm.MemberID = o.id
			if o.instanceID != "" {
				jm.InstanceID = &o.instanceID
			}
			jm.ProtocolMetadata = protocolMetadata(o, g.protocol)
			res.members = append(res.members, jm)
		}
		slices.SortFunc(res.members, func(a, b kmsg.JoinGroupResponseMember) int {
			return cmp.Compare(g.members[a.MemberID].joinSeq, g.members[b.MemberID].joinSeq)
		})
	}
	return res
}

func protocolMetadata(m *member, protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// chooseProtocol picks, among the protocols every member supports, the
// one most members prefer (each member votes for the first of its list
// that all support), ties going to the leader-order's first.
func (co *coordinator) chooseProtocol(g *group) string {
	votes := make(map[string]int)
	var order []string
	for _, m := range g.members {
		for _, p := range m.protocols {
			if co.supportedByAll(g, []kmsg.JoinGroupRequestProtocol{p}) {
				if votes[p.Name] == 0 {
					order = append(order, p.Name)
				}
				votes[p.Name]++
				break
			}
		}
	}
	slices.Sort(order)
	best := ""
	for _, name := range order {
		if best == "" || votes[name] > votes[best] {
			best = name
		}
	}
	return best
}

// dropMember removes m from the group, answering what it has parked.
func (co *coordinator) dropMember(g *group, m *member) {
	if m.join != nil {
		m.join <- joinResult{code: kerr.UnknownMemberID.Code, memberID: m.id, generation: -1}
	}
	if m.sync != nil {
		m.sync <- syncResult{code: kerr.UnknownMemberID.Code}
	}
	delete(g.members, m.id)
	if m.instanceID != "" && g.instances[m.instanceID] == m.id {
		delete(g.instances, m.instanceID)
	}
}

// removeMember removes a member that left or expired and rebalances the
// rest.
func (co *coordinator) removeMember(g *group, m *member) {
	co.dropMember(g, m)
	now := time.Now()
	switch g.state {
	case stateStable, stateCompletingRebalance:
		if len(g.members) == 0 {
			g.generation++
			g.state, g.protocol, g.leader = stateEmpty, "", ""
			return
		}
		co.prepareRebalance(g, now)
	case statePreparingRebalance:
		co.tryCompleteJoin(g, now)
	}
}

// checkMember validates a request's member ID, instance ID and generation
// against the group, returning the error code (0 if it is valid).
func checkMember(g *group, memberID, instanceID string, generation int32) (*member, int16) {
	if g == nil {
		return nil, kerr.UnknownMemberID.Code
	}
	if instanceID != "" {
		if id, ok := g.instances[instanceID]; ok && id != memberID {
			return nil, kerr.FencedInstanceID.Code
		}
	}
	m := g.members[memberID]
	if m == nil {
		return nil, kerr.UnknownMemberID.Code
	}
	if generation != g.generation {
		return m, kerr.IllegalGeneration.Code
	}
	return m, 0
}

// sync handles a SyncGroup: the leader's carries every member's
// assignment. It returns the answer at once or a channel it will come on.
func (co *coordinator) sync(name, memberID, instanceID string, generation int32, assignments map[string][]byte) (syncResult, <-chan syncResult) {
	co.mu.Lock()
	defer co.mu.Unlock()
	g := co.groups[name]
	m, code := checkMember(g, memberID, instanceID, generation)
	if code != 0 {
		return syncResult{code: code}, nil
	}
	m.deadline = time.Now().Add(m.session)
	switch g.state {
	case statePreparingRebalance:
		return syncResult{code: kerr.RebalanceInProgress.Code}, nil
	case stateStable:
		return syncResult{assignment: m.assignment}, nil
	}
	// CompletingRebalance.
	if m.sync != nil {
		m.sync <- syncResult{code: kerr.RebalanceInProgress.Code}
	}
	ch := make(chan syncResult, 1)
	m.sync = ch
	if m.id == g.leader {
		for _, o := range g.members {
			o.assignment = assignments[o.id]
		}
		g.state = stateStable
		for _, o := range g.members {
			if o.sync != nil {
				o.sync <- syncResult{assignment: o.assignment}
				o.sync = nil
			}
		}
	}
	return syncResult{}, ch
}

// heartbeat handles a Heartbeat, returning its error code.
func (co *coordinator) heartbeat(name, memberID, instanceID string, generation int32) int16 {
	co.mu.Lock()
	defer co.mu.Unlock()
	g := co.groups[name]
	m, code := checkMember(g, memberID, instanceID, generation)
	if m != nil {
		m.deadline = time.Now().Add(m.session)
	}
	if code != 0 {
		return code
	}
	if g.state == statePreparingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// leave removes a member (by member ID, or by instance ID for a static
// member), returning the error code.
func (co *coordinator) leave(name, memberID, instanceID string) int16 {
	co.mu.Lock()
	defer co.mu.Unlock()
	g := co.groups[name]
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	defer co.forgetIfEmpty(g)
	if instanceID != "" {
		id, ok := g.instances[instanceID]
		if !ok {
			return kerr.UnknownMemberID.Code
		}
		if memberID != "" && memberID != id {
			return kerr.FencedInstanceID.Code
		}
		memberID = id
	}
	if _, ok := g.pending[memberID]; ok {
		delete(g.pending, memberID)
		if g.state == statePreparingRebalance {
			co.tryCompleteJoin(g, time.Now())
		}
		return 0
	}
	m := g.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	co.removeMember(g, m)
	return 0
}

// commitCheck validates an OffsetCommit's member and generation: a
// commit from outside the group (generation -1, no member) is allowed
// only while the group has no members; during CompletingRebalance members
// must wait for their new assignment. It returns the group's protocol
// type (for its durable row) and the error code.
func (co *coordinator) commitCheck(name, memberID, instanceID string, generation int32) (string, int16) {
	co.mu.Lock()
	defer co.mu.Unlock()
	g := co.groups[name]
	if generation < 0 && memberID == "" {
		if g != nil && len(g.members) > 0 {
			return "", kerr.IllegalGeneration.Code
		}
		return "", 0
	}
	m, code := checkMember(g, memberID, instanceID, generation)
	if code != 0 {
		return "", code
	}
	if g.state == stateCompletingRebalance {
		return "", kerr.RebalanceInProgress.Code
	}
	m.deadline = time.Now().Add(m.session)
	return g.protocolType, 0
}

// groupView is a snapshot of a group for DescribeGroups and ListGroups.
type groupView struct {
	name, state, protocolType, protocol string
	members                             []kmsg.DescribeGroupsResponseGroupMember
}

// view returns a live group's snapshot; false if it has no members.
func (co *coordinator) view(name string) (groupView, bool) {
	co.mu.Lock()
	defer co.mu.Unlock()
	g := co.groups[name]
	if g == nil || (len(g.members) == 0 && g.state == stateEmpty) {
		return groupView{}, false
	}
	return co.viewLocked(g), true
}

func (co *coordinator) viewLocked(g *group) groupView {
	v := groupView{name: g.name, state: g.state, protocolType: g.protocolType}
	stable := g.state == stateStable
	if stable || g.state == stateCompletingRebalance {
		v.protocol = g.protocol
	}
	for _, m := range g.members {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.ClientID, dm.ClientHost = m.id, m.clientID, m.clientHost
		if m.instanceID != "" {
			dm.InstanceID = &m.instanceID
		}
		if stable {
			dm.ProtocolMetadata, dm.MemberAssignment = protocolMetadata(m, g.protocol), m.assignment
		}
		v.members = append(v.members, dm)
	}
	slices.SortFunc(v.members, func(a, b kmsg.DescribeGroupsResponseGroupMember) int {
		return cmp.Compare(g.members[a.MemberID].joinSeq, g.members[b.MemberID].joinSeq)
	})
	return v
}

// live returns a snapshot of every group with members.
func (co *coordinator) live() []groupView {
	co.mu.Lock()
	defer co.mu.Unlock()
	out := make([]groupView, 0, len(co.groups))
	for _, g := range co.groups {
		if len(g.members) > 0 || g.state != stateEmpty {
			out = append(out, co.viewLocked(g))
		}
	}
	return out
}

// unrecordedTopics returns those of topics the group's durable row is not
// known to list; markRecorded notes more of them as listed.
func (co *coordinator) unrecordedTopics(name string, topics []string) []string {
	co.mu.Lock()
	defer co.mu.Unlock()
	g := co.groups[name]
	if g == nil {
		return topics
	}
	var out []string
	for _, t := range topics {
		if !g.topics[t] {
			out = append(out, t)
		}
	}
	return out
}

func (co *coordinator) markRecorded(name string, topics []string) {
	co.mu.Lock()
	defer co.mu.Unlock()
	if g := co.groups[name]; g != nil {
		for _, t := range topics {
			g.topics[t] = true
		}
	}
}

// forget drops a deleted group's memory; false if it has members.
func (co *coordinator) forget(name string) bool {
	co.mu.Lock()
	defer co.mu.Unlock()
	g := co.groups[name]
	if g == nil {
		return true
	}
	if len(g.members) > 0 || len(g.pending) > 0 {
		return false
	}
	delete(co.groups, name)
	return true
}

// sameProtocol reports whether a SyncGroup's protocol type and name (each
// optional) match the group's.
func (co *coordinator) sameProtocol(name string, protocolType, protocol *string) bool {
	co.mu.Lock()
	defer co.mu.Unlock()
	g := co.groups[name]
	if g == nil {
		return true // answered UNKNOWN_MEMBER_ID by sync
	}
	return (protocolType == nil || *protocolType == g.protocolType) && (protocol == nil || g.protocol == "" || *protocol == g.protocol)
}

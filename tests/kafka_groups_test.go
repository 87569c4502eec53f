package tests

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestKafkaClientGroups runs the consumer groups of sarama
// (ConsumerGroup) and kafka-go (Reader with a GroupID). For each client a
// member reads a topic of two partitions from the beginning and commits,
// leaves, more messages are produced, and a new member of the same group
// gets exactly the new ones, first (nothing committed is read again). With
// sarama, the group's committed offsets are then the partitions' ends,
// ListGroups, DescribeGroups and DeleteGroups answer as on Kafka, and two
// members at once split the partitions and read every message once.
//
// kafka-go sends fixed old versions of the group APIs (FindCoordinator
// v0, JoinGroup v1 or v2, SyncGroup v0, Heartbeat v0, LeaveGroup v0,
// OffsetCommit v2, OffsetFetch v1), so the server must serve those.
func TestKafkaClientGroups(t *testing.T) {
	_, addr := startKafkaServer(t)
	ctx := testContext(t, 3*time.Minute)
	if _, ok := servedKafkaAPIs(ctx, t, addr)[int16(kmsg.JoinGroup)]; !ok {
		t.Fatal("the server does not advertise JoinGroup: consumer groups are served")
	}

	t.Run("sarama", func(t *testing.T) {
		const topic, group = "sarama-group", "sarama-g"
		produceForGroup(t, addr, topic, "old", 20)
		cfg := saramaConfig(sarama.DefaultVersion)
		cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
		cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
		checkFirst(t, "first member", consumeSaramaGroup(ctx, t, addr, cfg, topic, group, 20), "old", 20)
		produceForGroup(t, addr, topic, "new", 10)
		checkFirst(t, "second member", consumeSaramaGroup(ctx, t, addr, cfg, topic, group, 10), "new", 10)

		admin, err := sarama.NewClusterAdmin([]string{addr}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		offs, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1}})
		if err != nil {
			t.Fatalf("OffsetFetch: %v", err)
		}
		var committed int64
		for p := range int32(2) {
			b := offs.GetBlock(topic, p)
			if b == nil || b.Err != sarama.ErrNoError {
				t.Fatalf("partition %d: committed offset block %+v", p, b)
			}
			committed += b.Offset
		}
		if committed != 30 {
			t.Fatalf("the group's committed offsets add up to %d, want 30 (every message read)", committed)
		}

		groups, err := admin.ListConsumerGroups()
		if err != nil || groups[group] != "consumer" {
			t.Fatalf("ListConsumerGroups: %v %v; want %s with protocol type consumer", groups, err, group)
		}
		desc, err := admin.DescribeConsumerGroups([]string{group})
		if err != nil || len(desc) != 1 || desc[0].Err != sarama.ErrNoError || desc[0].State != "Empty" || len(desc[0].Members) != 0 {
			t.Fatalf("DescribeConsumerGroups after every member left: %+v %v; want Empty, no members", desc, err)
		}
		if err := admin.DeleteConsumerGroup(group); err != nil {
			t.Fatalf("DeleteConsumerGroup: %v", err)
		}
		offs, err = admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0}})
		if b := offs.GetBlock(topic, 0); err != nil || b == nil || b.Offset != -1 {
			t.Fatalf("OffsetFetch after DeleteGroups: %+v %v, want no committed offset (-1)", b, err)
		}
	})

	t.Run("sarama, two members split the partitions", func(t *testing.T) {
		const topic, group = "sarama-split", "sarama-split-g"
		produceForGroup(t, addr, topic, "warmup", 0)
		cfg := saramaConfig(sarama.DefaultVersion)
		cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
		cfg.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
		out := make(chan groupMessage)
		a := startSaramaMember(ctx, t, addr, cfg, topic, group, "a", out)
		waitFor(t, time.Minute, "member a to own both partitions", func() bool { return len(a.owned()) == 2 })
		b := startSaramaMember(ctx, t, addr, cfg, topic, group, "b", out)
		waitFor(t, time.Minute, "the two members to own one partition each", func() bool {
			return len(a.owned()) == 1 && len(b.owned()) == 1
		})
		produceForGroup(t, addr, topic, "split", 40)
		var got []string
		byPartition := map[int32]string{}
		for len(got) < 40 {
			select {
			case m := <-out:
				if owner, ok := byPartition[m.partition]; ok && owner != m.member {
					t.Fatalf("partition %d read by members %s and %s", m.partition, owner, m.member)
				}
				byPartition[m.partition] = m.member
				got = append(got, m.value)
			case <-ctx.Done():
				t.Fatalf("%d of 40 messages before the deadline", len(got))
			}
		}
		checkFirst(t, "the two members", got, "split", 40)
		a.stop(t)
		b.stop(t)
	})

	t.Run("kafka-go", func(t *testing.T) {
		const topic, group = "kafkago-group", "kafkago-g"
		produceForGroup(t, addr, topic, "old", 20)
		checkFirst(t, "first member", readKafkagoGroup(ctx, t, addr, topic, group, 20), "old", 20)
		produceForGroup(t, addr, topic, "new", 10)
		checkFirst(t, "second member", readKafkagoGroup(ctx, t, addr, topic, group, 10), "new", 10)

		// The group as kafka-go's Client (its own strict codec) sees it.
		tr := &kafkago.Transport{}
		defer tr.CloseIdleConnections()
		cl := &kafkago.Client{Addr: kafkago.TCP(addr), Timeout: 30 * time.Second, Transport: tr}
		lg, err := cl.ListGroups(ctx, &kafkago.ListGroupsRequest{})
		if err != nil || lg.Error != nil || !slices.ContainsFunc(lg.Groups, func(g kafkago.ListGroupsResponseGroup) bool {
			return g.GroupID == group && g.ProtocolType == "consumer"
		}) {
			t.Fatalf("ListGroups: %+v %v; want %s, protocol type consumer", lg, err, group)
		}
		of, err := cl.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0, 1}}})
		if err != nil || of.Error != nil || len(of.Topics[topic]) != 2 {
			t.Fatalf("OffsetFetch: %+v %v", of, err)
		}
		var committed int64
		for _, p := range of.Topics[topic] {
			if p.Error != nil {
				t.Fatalf("OffsetFetch of partition %d: %v", p.Partition, p.Error)
			}
			committed += p.CommittedOffset
		}
		if committed != 30 {
			t.Fatalf("the group's committed offsets add up to %d, want 30 (every message read)", committed)
		}

		// A live member, described: its subscription and assignment are
		// the bytes kafka-go sent, decoded back by kafka-go.
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{addr}, GroupID: group, Topic: topic,
			MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
		defer r.Close()
		produceForGroup(t, addr, topic, "live", 1)
		if _, err := r.ReadMessage(ctx); err != nil {
			t.Fatal(err)
		}
		dg, err := cl.DescribeGroups(ctx, &kafkago.DescribeGroupsRequest{GroupIDs: []string{group}})
		if err != nil || len(dg.Groups) != 1 || dg.Groups[0].Error != nil || dg.Groups[0].GroupState != "Stable" || len(dg.Groups[0].Members) != 1 {
			t.Fatalf("DescribeGroups with one live member: %+v %v; want Stable, one member", dg, err)
		}
		m := dg.Groups[0].Members[0]
		if !slices.Equal(m.MemberMetadata.Topics, []string{topic}) || len(m.MemberAssignments.Topics) != 1 ||
			m.MemberAssignments.Topics[0].Topic != topic || len(m.MemberAssignments.Topics[0].Partitions) != 2 {
			t.Fatalf("DescribeGroups member: metadata %+v, assignment %+v; want %s subscribed, both partitions assigned", m.MemberMetadata, m.MemberAssignments, topic)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		dl, err := cl.DeleteGroups(ctx, &kafkago.DeleteGroupsRequest{GroupIDs: []string{group}})
		if err != nil || dl.Errors[group] != nil {
			t.Fatalf("DeleteGroups after the member left: %+v %v", dl, err)
		}
	})
}

// produceForGroup creates topic (two partitions) if needed and sends n
// messages "<prefix>-i" to it with sarama, spread by key.
func produceForGroup(t *testing.T, addr, topic, prefix string, n int) {
	t.Helper()
	cfg := saramaConfig(sarama.DefaultVersion)
	cfg.Producer.Partitioner = sarama.NewHashPartitioner
	admin, err := sarama.NewClusterAdmin([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err != nil &&
		!strings.Contains(err.Error(), sarama.ErrTopicAlreadyExists.Error()) {
		t.Fatal(err)
	}
	prod, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var msgs []*sarama.ProducerMessage
	for i := range n {
		v := fmt.Sprintf("%s-%d", prefix, i)
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(v), Value: sarama.StringEncoder(v)})
	}
	if err := prod.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
}

// checkFirst fails unless got holds n distinct messages "<prefix>-i".
func checkFirst(t *testing.T, who string, got []string, prefix string, n int) {
	t.Helper()
	seen := map[string]bool{}
	for _, v := range got {
		if !strings.HasPrefix(v, prefix+"-") || seen[v] {
			t.Fatalf("%s read %q among its first %d messages %v; want each of %s-0..%d once", who, v, n, got, prefix, n-1)
		}
		seen[v] = true
	}
	if len(seen) != n {
		t.Fatalf("%s read %d distinct messages, want %d", who, len(seen), n)
	}
}

// saramaGroupHandler hands each claimed message to out, marking it
// consumed, until ctx ends.
type saramaGroupHandler struct {
	ctx context.Context
	out chan<- string
}

func (saramaGroupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (saramaGroupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h saramaGroupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-c.Messages():
			if !ok {
				return nil
			}
			select {
			case h.out <- string(m.Value):
				s.MarkMessage(m, "")
			case <-h.ctx.Done():
				return nil
			}
		case <-h.ctx.Done():
			return nil
		}
	}
}

// consumeSaramaGroup joins group with a new sarama ConsumerGroup, reads
// the first n messages it is given, and closes the group, which commits
// what was marked.
func consumeSaramaGroup(ctx context.Context, t *testing.T, addr string, cfg *sarama.Config, topic, group string, n int) []string {
	t.Helper()
	cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
	if err != nil {
		t.Fatalf("sarama consumer group: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	out := make(chan string)
	done := make(chan error, 1)
	go func() {
		for cctx.Err() == nil {
			if err := cg.Consume(cctx, []string{topic}, saramaGroupHandler{ctx: cctx, out: out}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	var got []string
	for len(got) < n {
		select {
		case v := <-out:
			got = append(got, v)
		case err := <-cg.Errors():
			t.Errorf("sarama group: %v", err)
		case err := <-done:
			cancel()
			t.Fatalf("sarama group stopped after %d of %d messages: %v", len(got), n, err)
		case <-ctx.Done():
			cancel()
			t.Fatalf("sarama group: %d of %d messages before the deadline", len(got), n)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("sarama group: %v", err)
	}
	if err := cg.Close(); err != nil {
		t.Errorf("closing the sarama group: %v", err)
	}
	return got
}

// readKafkagoGroup reads n messages as a new member of group with a
// kafka-go Reader, which commits each one as it is read, and closes it.
func readKafkagoGroup(ctx context.Context, t *testing.T, addr, topic, group string, n int) []string {
	t.Helper()
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{addr}, GroupID: group, Topic: topic,
		StartOffset: kafkago.FirstOffset, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
	var got []string
	for len(got) < n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			r.Close()
			t.Fatalf("kafka-go group reader after %d of %d messages: %v", len(got), n, err)
		}
		got = append(got, string(m.Value))
	}
	if err := r.Close(); err != nil {
		t.Errorf("closing the kafka-go group reader: %v", err)
	}
	return got
}

// groupMessage is a message read by a named group member.
type groupMessage struct {
	member    string
	partition int32
	value     string
}

// saramaMember is a sarama ConsumerGroup member consuming in the
// background; it sends what it reads to out and tracks the partitions
// it owns.
type saramaMember struct {
	name   string
	cg     sarama.ConsumerGroup
	cancel context.CancelFunc
	done   chan error
	out    chan<- groupMessage
	mu     struct {
		sync.Mutex
		owned []int32
	}
}

func startSaramaMember(ctx context.Context, t *testing.T, addr string, cfg *sarama.Config, topic, group, name string, out chan<- groupMessage) *saramaMember {
	t.Helper()
	cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
	if err != nil {
		t.Fatalf("member %s: %v", name, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	m := &saramaMember{name: name, cg: cg, cancel: cancel, done: make(chan error, 1), out: out}
	go func() {
		for cctx.Err() == nil {
			if err := cg.Consume(cctx, []string{topic}, memberHandler{m: m, ctx: cctx}); err != nil {
				m.done <- err
				return
			}
		}
		m.done <- nil
	}()
	t.Cleanup(func() { m.stop(t) })
	return m
}

// owned returns the partitions the member owns in its current session.
func (m *saramaMember) owned() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.mu.owned)
}

// stop leaves the group; it may be called more than once.
func (m *saramaMember) stop(t *testing.T) {
	if m.cancel == nil {
		return
	}
	m.cancel()
	m.cancel = nil
	if err := <-m.done; err != nil {
		t.Errorf("member %s: %v", m.name, err)
	}
	if err := m.cg.Close(); err != nil {
		t.Errorf("closing member %s: %v", m.name, err)
	}
}

type memberHandler struct {
	m   *saramaMember
	ctx context.Context
}

func (h memberHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	h.m.mu.owned = nil
	for _, ps := range s.Claims() {
		h.m.mu.owned = append(h.m.mu.owned, ps...)
	}
	return nil
}

func (h memberHandler) Cleanup(sarama.ConsumerGroupSession) error {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	h.m.mu.owned = nil
	return nil
}

func (h memberHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for {
		select {
		case msg, ok := <-c.Messages():
			if !ok {
				return nil
			}
			select {
			case h.m.out <- groupMessage{member: h.m.name, partition: msg.Partition, value: string(msg.Value)}:
				s.MarkMessage(msg, "")
			case <-h.ctx.Done():
				return nil
			}
		case <-h.ctx.Done():
			return nil
		}
	}
}

// TestKafkaKcatConsumerGroupResumes runs kcat's balanced consumer (-G,
// librdkafka's KafkaConsumer: its own versions of the group APIs and
// automatic commits on close): the first run reads the topic from the
// beginning and exits at its end, the second, after one more message,
// reads only that one. It skips without kcat, and while JoinGroup is not
// served.
func TestKafkaKcatConsumerGroupResumes(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed (apt-get install kcat)")
	}
	_, addr := startKafkaServer(t)
	ctx := testContext(t, 2*time.Minute)
	if _, ok := servedKafkaAPIs(ctx, t, addr)[int16(kmsg.JoinGroup)]; !ok {
		t.Fatal("the server does not advertise JoinGroup: consumer groups are served")
	}
	run := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, kcat, append([]string{"-b", addr}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kcat %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	consume := []string{"-G", "kcat-g", "kcat-group", "-e", "-q", "-f", `%o %s\n`, "-X", "auto.offset.reset=earliest"}
	run("a\nb\nc\n", "-P", "-t", "kcat-group")
	if got := run("", consume...); got != "0 a\n1 b\n2 c\n" {
		t.Fatalf("first group member read:\n%s", got)
	}
	run("d\n", "-P", "-t", "kcat-group")
	if got := run("", consume...); got != "3 d\n" {
		t.Fatalf("second group member read:\n%s\nwant only the message produced after the first one's commit", got)
	}
}

// TestKafkaClientGroupCommitsSurviveARestart commits with a sarama group
// member, restarts the server on the same data directory and Kafka
// address, and checks that a new member of the group resumes after the
// commit. It skips while JoinGroup is not served.
func TestKafkaClientGroupCommitsSurviveARestart(t *testing.T) {
	srv, addr := startKafkaServer(t)
	ctx := testContext(t, 3*time.Minute)
	if _, ok := servedKafkaAPIs(ctx, t, addr)[int16(kmsg.JoinGroup)]; !ok {
		t.Fatal("the server does not advertise JoinGroup: consumer groups are served")
	}
	const topic, group = "restart-group", "restart-g"
	cfg := saramaConfig(sarama.DefaultVersion)
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	produceForGroup(t, addr, topic, "before", 20)
	checkFirst(t, "the member before the restart", consumeSaramaGroup(ctx, t, addr, cfg, topic, group, 20), "before", 20)

	srv.stop()
	startServer(t, srv.dataDir, "--kafka.listen-addr", addr)
	produceForGroup(t, addr, topic, "after", 10)
	checkFirst(t, "the member after the restart", consumeSaramaGroup(ctx, t, addr, cfg, topic, group, 10), "after", 10)
}

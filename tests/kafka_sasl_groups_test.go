package tests

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/magnetar-mq/magnetar/internal/nettest"
)

// A standalone that requires SASL: kcat (librdkafka) produces logged in
// with SCRAM-SHA-512 and consumes with PLAIN, franz-go consumes with
// SCRAM-SHA-256, and a wrong password is refused.
func TestKafkaSASLLoginsWithKcatAndFranzGo(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed (apt-get install kcat)")
	}
	_, addr := startKafkaServer(t, "--kafka.sasl-mechanisms", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
		"--kafka.sasl-users", "app:app-secret")
	ctx := testContext(t, 2*time.Minute)
	run := func(mech, pass, stdin string, args ...string) (string, error) {
		all := append([]string{"-b", addr, "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=" + mech,
			"-X", "sasl.username=app", "-X", "sasl.password=" + pass}, args...)
		cmd := exec.CommandContext(ctx, kcat, all...)
		cmd.Stdin = strings.NewReader(stdin)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		return string(out) + stderr.String(), err
	}
	if out, err := run("SCRAM-SHA-512", "app-secret", "one\ntwo\nthree\n", "-P", "-t", "secured"); err != nil {
		t.Fatalf("kcat produce with SCRAM-SHA-512: %v\n%s", err, out)
	}
	out, err := run("PLAIN", "app-secret", "", "-C", "-q", "-t", "secured", "-o", "beginning", "-e", "-f", "%s\n")
	if err != nil || out != "one\ntwo\nthree\n" {
		t.Fatalf("kcat consume with PLAIN: %v\n%q", err, out)
	}
	if out, err := run("PLAIN", "wrong", "", "-L", "-m", "5"); err == nil || !strings.Contains(out, "uthentication") {
		t.Fatalf("kcat with a wrong password: err %v\n%s", err, out)
	}
	cl := kafkaClient(t, addr, kgo.SASL(scram.Auth{User: "app", Pass: "app-secret"}.AsSha256Mechanism()),
		kgo.ConsumeTopics("secured"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < 3 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("franz-go with SCRAM-SHA-256: %v", err)
		}
		for _, r := range fs.Records() {
			got = append(got, string(r.Value))
		}
	}
	bad := kafkaClient(t, addr, kgo.SASL(plain.Auth{User: "app", Pass: "nope"}.AsMechanism()), kgo.RequestRetries(0))
	if _, err := kadm.NewClient(bad).ListTopics(ctx); err == nil {
		t.Fatal("franz-go logged in with a wrong password")
	}
}

// A consumer group's committed offsets survive a crash of the standalone:
// after a kill -9 and a restart a new member of the group resumes after the
// last commit (nothing committed is consumed again), and the group's lag
// is the native subscription's backlog as magctl shows it.
func TestKafkaConsumerGroupOffsetsSurviveACrash(t *testing.T) {
	skipIfShort(t)
	dir := t.TempDir()
	addr := nettest.FreeAddr(t)
	args := []string{"--kafka.listen-addr", addr}
	srv := startServer(t, dir, args...)
	ctx := testContext(t, 3*time.Minute)
	adm := kadm.NewClient(kafkaClient(t, addr))
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "jobs"); err != nil {
		t.Fatal(err)
	}
	produce := func(from, n int) {
		p := kafkaClient(t, addr, kgo.DefaultProduceTopic("jobs"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		var recs []*kgo.Record
		for i := from; i < from+n; i++ {
			recs = append(recs, &kgo.Record{Partition: int32(i % 2), Value: fmt.Appendf(nil, "job-%d", i)})
		}
		if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// consume takes n records as a member of group "workers" and commits them.
	consume := func(n int) map[string]bool {
		cl := kafkaClient(t, addr, kgo.ConsumerGroup("workers"), kgo.ConsumeTopics("jobs"), kgo.DisableAutoCommit(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		defer cl.Close()
		seen := map[string]bool{}
		for len(seen) < n {
			fs := cl.PollFetches(ctx)
			if err := fs.Err(); err != nil {
				t.Fatalf("consuming: %v", err)
			}
			fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatalf("commit: %v", err)
			}
		}
		return seen
	}
	produce(0, 40)
	if got := consume(40); len(got) != 40 {
		t.Fatalf("first round consumed %d distinct records, want 40", len(got))
	}
	srv.kill()
	srv = startServer(t, dir, args...)
	produce(40, 10)
	lags, err := adm.Lag(ctx, "workers")
	if err != nil || lags["workers"].Lag.Total() != 10 {
		t.Fatalf("lag after the restart: %+v %v, want 10", lags["workers"].Lag, err)
	}
	var st struct {
		Subscriptions []struct {
			Name    string `json:"name"`
			Backlog int64  `json:"backlog"`
		} `json:"subscriptions"`
	}
	if err := json.Unmarshal([]byte(magctl(t, srv, "", "topics", "stats", "jobs", "-o", "json")), &st); err != nil {
		t.Fatal(err)
	}
	var backlog int64 = -1
	for _, s := range st.Subscriptions {
		if s.Name == "workers" {
			backlog = max(backlog, 0) + s.Backlog
		}
	}
	if backlog != 10 {
		t.Fatalf("magctl: backlog of subscription workers = %d, want 10 (the group's lag): %+v", backlog, st.Subscriptions)
	}
	got := consume(10)
	for v := range got {
		var i int
		fmt.Sscanf(v, "job-%d", &i)
		if i < 40 {
			t.Fatalf("record %s, committed before the crash, was consumed again", v)
		}
	}
}

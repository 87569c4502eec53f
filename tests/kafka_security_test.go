package tests

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/magnetar-mq/magnetar/internal/auth"
)

// TestKafkaClientsLogInWithTokensAndAreHeldToTheirGrants runs a secured
// standalone whose Kafka listener takes the native listener's tokens over
// OAUTHBEARER, and SCRAM users: a role granted produce on the Kafka
// namespace produces with franz-go; a role granted nothing is refused
// (TOPIC_AUTHORIZATION_FAILED) and stores nothing; a forged token does not
// log in; and what was acknowledged is read back by a role allowed to.
func TestKafkaClientsLogInWithTokensAndAreHeldToTheirGrants(t *testing.T) {
	key := auth.GenerateSecretKey()
	keyFile := filepath.Join(t.TempDir(), "secret.key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	srv, addr := startKafkaServer(t, "--auth.enabled", "--auth.token-secret-key-file", keyFile,
		"--authorization.enabled", "--authorization.superuser-roles", "admin",
		"--kafka.sasl-mechanisms", "OAUTHBEARER,SCRAM-SHA-256", "--kafka.sasl-users", "reader:reader-secret",
		"--kafka.sasl-oauthbearer.token-secret-key-file", keyFile)
	ctx := testContext(t, 2*time.Minute)
	token := func(role string, key []byte) string {
		tok, err := auth.CreateToken(key, role, time.Hour, nil)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	root := adminAs(srv, token("admin", key))
	if _, err := root.CreateTopic(ctx, "public/default/orders", 1); err != nil {
		t.Fatal(err)
	}
	if err := root.GrantNamespacePermission(ctx, "public/default", "app", []string{"produce"}); err != nil {
		t.Fatal(err)
	}
	if err := root.GrantTopicPermission(ctx, "public/default/orders", "reader", []string{"consume"}); err != nil {
		t.Fatal(err)
	}
	as := func(role string, key []byte, opts ...kgo.Opt) *kgo.Client {
		tok := token(role, key)
		return kafkaClient(t, addr, append([]kgo.Opt{kgo.SASL(oauth.Oauth(func(context.Context) (oauth.Auth, error) {
			return oauth.Auth{Token: tok}, nil
		})), kgo.RequestRetries(0)}, opts...)...)
	}

	app := as("app", key)
	for i := range 5 {
		if err := app.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte{byte('0' + i)}}).FirstErr(); err != nil {
			t.Fatalf("app's produce %d: %v", i, err)
		}
	}
	stranger := as("stranger", key, kgo.ProducerLinger(0))
	if err := stranger.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("a role granted nothing producing: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	forged := as("admin", auth.GenerateSecretKey())
	if err := forged.Ping(ctx); err == nil {
		t.Fatal("a token signed by another key logged in")
	}
	waitFor(t, 10*time.Second, "the refused login on /metrics", func() bool {
		return metricAtLeast(t, srv, `magnetar_kafka_sasl_failures_total{outcome="failed"}`, 1)
	})

	// The SCRAM user "reader" is the role granted consume on the topic.
	reader := kafkaClient(t, addr, kgo.SASL(scram.Auth{User: "reader", Pass: "reader-secret"}.AsSha256Mechanism()),
		kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < 5 {
		fs := reader.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("reader's fetch: %v", err)
		}
		for _, r := range fs.Records() {
			got = append(got, string(r.Value))
		}
	}
	if len(got) != 5 || got[0] != "0" || got[4] != "4" {
		t.Fatalf("read back %q, want the 5 acknowledged messages only", got)
	}
	st, err := root.TopicStats(ctx, "public/default/orders")
	if err != nil {
		t.Fatal(err)
	}
	if st.Partitions[0].EndOffset != 5 {
		t.Fatalf("end offset %d, want 5: the stranger's record was stored", st.Partitions[0].EndOffset)
	}
}

// metricAtLeast reports whether the server's /metrics has the series
// (name and labels, exactly as exposed) at min or more.
func metricAtLeast(t *testing.T, srv *server, series string, min float64) bool {
	t.Helper()
	resp, err := http.Get(srv.adminURL() + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return err == nil && f >= min
		}
	}
	return false
}

package kafka

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/oauth"

	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/internal/auth"
)

// secretKeyFile writes a new HS256 key as magctl does and returns it and
// its file.
func secretKeyFile(t *testing.T) ([]byte, string) {
	t.Helper()
	key := auth.GenerateSecretKey()
	file := filepath.Join(t.TempDir(), "token.key")
	if err := os.WriteFile(file, auth.EncodeSecretKey(key), 0o600); err != nil {
		t.Fatal(err)
	}
	return key, file
}

func token(t *testing.T, key []byte, role string) string {
	t.Helper()
	tok, err := auth.CreateToken(key, role, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// newOAuthServer takes OAUTHBEARER logins with tokens of the key it
// returns, with authorization on; topic "a" exists and alice may produce
// on it.
func newOAuthServer(t *testing.T) (*testServer, []byte) {
	t.Helper()
	key, file := secretKeyFile(t)
	ts := newTestServerOn(t, authzBroker(), nil, func(c *Config) {
		c.SASLMechanisms = "OAUTHBEARER"
		c.OAuthBearer.SecretKeyFile = file
	})
	a := ts.topic(t, "a")
	if err := ts.b.CreateTopic(ctxT(t), a, 1); err != nil {
		t.Fatal(err)
	}
	if err := ts.b.SetTopicPermission(ctxT(t), a, "alice", broker.ActionProduce); err != nil {
		t.Fatal(err)
	}
	return ts, key
}

func oauthClient(t *testing.T, ts *testServer, tok string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return newClient(t, ts, append([]kgo.Opt{kgo.SASL(oauth.Auth{Token: tok}.AsMechanism()),
		kgo.DisableIdempotentWrite(), kgo.RecordDeliveryTimeout(15 * time.Second)}, opts...)...)
}

// franz-go logs in with OAUTHBEARER; the token's subject is the role the
// broker authorizes.
func TestOAuthBearerLogsInWithAJWTWhoseSubjectIsTheRole(t *testing.T) {
	t.Parallel()
	ts, key := newOAuthServer(t)
	ctx := ctxT(t)
	if err := oauthClient(t, ts, token(t, key, "alice")).ProduceSync(ctx, &kgo.Record{Topic: "a", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("alice's token: %v", err)
	}
	if err := oauthClient(t, ts, token(t, key, "bob")).ProduceSync(ctx, &kgo.Record{Topic: "a", Value: []byte("v")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("bob's token: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	other, _ := secretKeyFile(t)
	cl := oauthClient(t, ts, token(t, other, "alice"), kgo.RequestRetries(0))
	if _, err := kadm.NewClient(cl).ListTopics(ctx); err == nil {
		t.Fatal("a token of another key logged in")
	}
	if end := endOffset(t, ts, "a"); end != 1 {
		t.Fatalf("a holds %d records, want alice's 1", end)
	}
}

// A refused token is answered with RFC 7628's error, and the client's
// acknowledgement (0x01) with SASL_AUTHENTICATION_FAILED and a closed
// connection; a good one with an empty message, then requests are served.
func TestOAuthBearerExchangeOverTheWire(t *testing.T) {
	t.Parallel()
	ts, key := newOAuthServer(t)
	login := func(c *rawConn, msg string) *kmsg.SASLAuthenticateResponse {
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 1, "OAUTHBEARER"
		if r := c.roundTrip(hs).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
			t.Fatalf("handshake: code %d", r.ErrorCode)
		}
		return authenticate(c, msg)
	}
	alice := token(t, key, "alice")
	for name, msg := range map[string]string{
		"a token of another key":         "n,,\x01auth=Bearer " + token(t, auth.GenerateSecretKey(), "alice") + "\x01\x01",
		"not a JWT":                      "n,,\x01auth=Bearer abc.def.ghi\x01\x01",
		"an authzid other than the role": "n,a=bob,\x01auth=Bearer " + alice + "\x01\x01",
	} {
		c := ts.dial(t)
		r := login(c, msg)
		if r.ErrorCode != 0 || string(r.SASLAuthBytes) != `{"status":"invalid_token"}` {
			t.Fatalf("%s: code %d, challenge %q", name, r.ErrorCode, r.SASLAuthBytes)
		}
		r = authenticate(c, "\x01")
		if r.ErrorCode != kerr.SaslAuthenticationFailed.Code || r.ErrorMessage == nil || strings.Contains(*r.ErrorMessage, alice) {
			t.Fatalf("%s, acknowledged: code %d, message %v", name, r.ErrorCode, r.ErrorMessage)
		}
		c.expectClosed()
	}

	c := ts.dial(t)
	if r := login(c, "n,a=alice,\x01auth=Bearer "+alice+"\x01host=localhost\x01port=9092\x01\x01"); r.ErrorCode != 0 || len(r.SASLAuthBytes) != 0 {
		t.Fatalf("alice's login: code %d, answer %q", r.ErrorCode, r.SASLAuthBytes)
	}
	md := kmsg.NewPtrMetadataRequest()
	if r := c.roundTrip(md).(*kmsg.MetadataResponse); len(r.Topics) != 1 || *r.Topics[0].Topic != "a" {
		t.Fatalf("alice's metadata after the login: %+v", r.Topics)
	}

	// A malformed message fails the login at once.
	c = ts.dial(t)
	if r := login(c, "n,,auth=Bearer "+alice); r.ErrorCode != kerr.SaslAuthenticationFailed.Code {
		t.Fatalf("a malformed message: code %d", r.ErrorCode)
	}
	c.expectClosed()
}

func authenticate(c *rawConn, msg string) *kmsg.SASLAuthenticateResponse {
	req := kmsg.NewPtrSASLAuthenticateRequest()
	req.Version, req.SASLAuthBytes = 2, []byte(msg)
	return c.roundTrip(req).(*kmsg.SASLAuthenticateResponse)
}

func TestParseOAuthBearer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		msg            string
		token, authzid string
		ok             bool
	}{
		{"n,,\x01auth=Bearer t0k.en\x01\x01", "t0k.en", "", true},
		{"n,a=alice,\x01auth=Bearer s3cr3t\x01\x01", "s3cr3t", "alice", true},
		{"n,a=a=2Cb=3Dc,\x01auth=Bearer s3cr3t\x01\x01", "s3cr3t", "a,b=c", true},
		{"y,,\x01host=h\x01auth=bearer s3cr3t\x01port=1\x01\x01", "s3cr3t", "", true},
		{"", "", "", false},
		{"\x01", "", "", false}, // an error acknowledgement, as a first message
		{"p=tls-unique,,\x01auth=Bearer s3cr3t\x01\x01", "", "", false},
		{"n,x=alice,\x01auth=Bearer s3cr3t\x01\x01", "", "", false},
		{"n,a=a=zz,\x01auth=Bearer s3cr3t\x01\x01", "", "", false},
		{"n,,\x01auth=Bearer s3cr3t\x01", "", "", false},
		{"n,,auth=Bearer s3cr3t\x01\x01", "", "", false},
		{"n,,\x01host=h\x01\x01", "", "", false},
		{"n,,\x01auth=Bearer a\x01auth=Bearer b\x01\x01", "", "", false},
		{"n,,\x01auth=Basic dXNlcg==\x01\x01", "", "", false},
		{"n,,\x01auth=Bearer \x01\x01", "", "", false},
		{"n,,\x01au-th=x\x01auth=Bearer s3cr3t\x01\x01", "", "", false},
		{"n,,\x01auth=Bearer s3cr3t\x00\x01\x01", "", "", false},
	}
	for _, tt := range tests {
		tok, authzid, err := parseOAuthBearer([]byte(tt.msg))
		if (err == nil) != tt.ok || tok != tt.token || authzid != tt.authzid {
			t.Errorf("%q: %q, %q, %v; want %q, %q, ok %v", tt.msg, tok, authzid, err, tt.token, tt.authzid, tt.ok)
		}
		if err != nil && (!errors.Is(err, errAuthFailed) || strings.Contains(err.Error(), "s3cr3t")) {
			t.Errorf("%q: error %v: want errAuthFailed, not quoting the message", tt.msg, err)
		}
	}
}

func FuzzOAuthBearerMessage(f *testing.F) {
	for _, s := range []string{"n,,\x01auth=Bearer t\x01\x01", "n,a=u,\x01auth=Bearer t\x01k=v\x01\x01", "\x01", "n,,\x01\x01"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		tok, _, err := parseOAuthBearer(msg)
		if err == nil && (tok == "" || strings.ContainsRune(tok, 1)) {
			t.Fatalf("%q parsed to token %q", msg, tok)
		}
	})
}

func TestOAuthBearerConfig(t *testing.T) {
	t.Parallel()
	_, keyFile := secretKeyFile(t)
	var c Config
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	c.RegisterFlags("kafka.", fs)
	if err := fs.Parse([]string{"--kafka.sasl-mechanisms=OAUTHBEARER", "--kafka.listen-addr=127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "token key") {
		t.Fatalf("OAUTHBEARER without a key: %v", err)
	}
	if err := fs.Parse([]string{"--kafka.sasl-oauthbearer.token-secret-key-file=" + keyFile, "--kafka.sasl-oauthbearer.token-audience=kafka"}); err != nil {
		t.Fatal(err)
	}
	if c.OAuthBearer.SecretKeyFile != keyFile || c.OAuthBearer.Audience != "kafka" {
		t.Fatalf("flags set %+v", c.OAuthBearer)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("OAUTHBEARER with a key and no users: %v", err)
	}
	c.SASLMechanisms = "OAUTHBEARER,PLAIN"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "users") {
		t.Fatalf("PLAIN without users: %v", err)
	}
	c.SASLMechanisms, c.OAuthBearer.PublicKeyFile = "OAUTHBEARER", keyFile
	if err := c.Validate(); err == nil {
		t.Fatal("two token keys validated")
	}
}

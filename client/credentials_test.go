package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/client"
	"github.com/magnetar-mq/magnetar/internal/auth"
	"github.com/magnetar-mq/magnetar/internal/auth/authtest"
	"github.com/magnetar-mq/magnetar/protocol/native/nativepb"
)

// presented is what one call to the recording broker carried.
type presented struct {
	method        string
	authorization []string // the "authorization" metadata
	certRole      string   // the verified client certificate's role
}

// recordingBroker answers lookups with one partition and refuses every
// stream once it has recorded what the call carried.
type recordingBroker struct {
	nativepb.UnimplementedMagnetarServer
	mu    sync.Mutex
	calls []presented
}

func (b *recordingBroker) record(ctx context.Context, method string) {
	md, _ := metadata.FromIncomingContext(ctx)
	p := presented{method: method, authorization: md.Get("authorization")}
	if pr, ok := peer.FromContext(ctx); ok {
		if ti, ok := pr.AuthInfo.(credentials.TLSInfo); ok {
			if who, ok := auth.TLSPrincipal(&ti.State); ok {
				p.certRole = who.Role
			}
		}
	}
	b.mu.Lock()
	b.calls = append(b.calls, p)
	b.mu.Unlock()
}

func (b *recordingBroker) seen() []presented {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]presented(nil), b.calls...)
}

func (b *recordingBroker) Lookup(ctx context.Context, req *nativepb.LookupRequest) (*nativepb.LookupResponse, error) {
	b.record(ctx, "Lookup")
	return &nativepb.LookupResponse{Topic: "public/default/" + req.GetTopic(), Partitions: 1}, nil
}

func (b *recordingBroker) Produce(s grpc.BidiStreamingServer[nativepb.ProduceRequest, nativepb.ProduceResponse]) error {
	b.record(s.Context(), "Produce")
	return status.Error(codes.PermissionDenied, "recorded")
}

func (b *recordingBroker) Consume(s grpc.BidiStreamingServer[nativepb.ConsumeRequest, nativepb.ConsumeResponse]) error {
	b.record(s.Context(), "Consume")
	return status.Error(codes.PermissionDenied, "recorded")
}

// startRecordingBroker serves a recordingBroker on a local port, with TLS
// when tlsCfg is set; it stops when the test ends.
func startRecordingBroker(t *testing.T, tlsCfg *tls.Config) (*recordingBroker, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	srv := grpc.NewServer(opts...)
	b := &recordingBroker{}
	nativepb.RegisterMagnetarServer(srv, b)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return b, lis.Addr().String()
}

func newClient(t *testing.T, opts client.Options) *client.Client {
	t.Helper()
	c, err := client.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestTokenGoesWithEveryCallAndStream: a client with a token presents it
// on lookups and on produce and consume streams, over plaintext too.
func TestTokenGoesWithEveryCallAndStream(t *testing.T) {
	t.Parallel()
	b, addr := startRecordingBroker(t, nil)
	c := newClient(t, client.Options{Address: addr, Token: "tok.en-1"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Lookup(ctx, "orders", false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: "orders", AccessMode: client.ExclusiveAccess}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("CreateProducer: %v, want the broker's refusal", err)
	}
	if _, err := c.Subscribe(ctx, client.ConsumerOptions{Topic: "orders", Subscription: "s"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("Subscribe: %v, want the broker's refusal", err)
	}
	methods := map[string]bool{}
	for _, p := range b.seen() {
		methods[p.method] = true
		if len(p.authorization) != 1 || p.authorization[0] != "Bearer tok.en-1" {
			t.Errorf("%s carried authorization %q, want [Bearer tok.en-1]", p.method, p.authorization)
		}
	}
	if !methods["Lookup"] || !methods["Produce"] || !methods["Consume"] {
		t.Fatalf("calls seen: %v, want Lookup, Produce and Consume", methods)
	}
}

func TestNoTokenSendsNoAuthorization(t *testing.T) {
	t.Parallel()
	b, addr := startRecordingBroker(t, nil)
	c := newClient(t, client.Options{Address: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Lookup(ctx, "orders", false); err != nil {
		t.Fatal(err)
	}
	if got := b.seen(); len(got) != 1 || got[0].authorization != nil {
		t.Fatalf("calls %+v, want one without authorization", got)
	}
}

// TestTokenSourceIsAskedForEachCall: each call carries the source's
// current token; a source that fails stops the call before it is sent,
// as Unauthenticated (which the client does not retry).
func TestTokenSourceIsAskedForEachCall(t *testing.T) {
	t.Parallel()
	b, addr := startRecordingBroker(t, nil)
	var n atomic.Int32
	failing := errors.New("vault is sealed")
	c := newClient(t, client.Options{Address: addr, TokenSource: func(ctx context.Context) (string, error) {
		switch i := n.Add(1); i {
		case 1, 2:
			return fmt.Sprintf("token-%d", i), nil
		case 3:
			return "two words", nil
		}
		return "", failing
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for range 2 {
		if _, err := c.Lookup(ctx, "orders", false); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"two words", failing.Error()} {
		_, err := c.Lookup(ctx, "orders", false)
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("Lookup with a bad token: %v, want Unauthenticated", err)
		}
		if want == failing.Error() && !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say why: %q", err, want)
		}
		if want != failing.Error() && strings.Contains(err.Error(), want) {
			t.Fatalf("error %q quotes the token", err)
		}
	}
	got := b.seen()
	if len(got) != 2 || got[0].authorization[0] != "Bearer token-1" || got[1].authorization[0] != "Bearer token-2" {
		t.Fatalf("calls %+v, want token-1 then token-2 and nothing more", got)
	}
}

func TestOptionsRefuseTokensAHeaderCannotCarry(t *testing.T) {
	t.Parallel()
	src := func(context.Context) (string, error) { return "t", nil }
	for _, tt := range []struct {
		name string
		opts client.Options
		want string
	}{
		{"both a token and a source", client.Options{Token: "a", TokenSource: src}, "not both"},
		{"a space", client.Options{Token: "secret token"}, "byte 0x20 at 6"},
		{"a newline", client.Options{Token: "secret\n"}, "byte 0x0a at 6"},
		{"a non-ASCII byte", client.Options{Token: "sécret"}, "byte 0xc3 at 1"},
	} {
		_, err := client.New(tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New = %v, want %q", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error %q quotes the token", tt.name, err)
		}
	}
}

// TestTLSWithAClientCertificate: over TLS the broker verifies the client's
// certificate, whose name is a role, and still gets the token; a client
// without TLS, or trusting another CA, does not get through.
func TestTLSWithAClientCertificate(t *testing.T) {
	t.Parallel()
	ca := authtest.NewCA(t)
	b, addr := startRecordingBroker(t, &tls.Config{
		Certificates: []tls.Certificate{ca.Issue(t, "broker").TLS},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
	})
	clientCert := ca.Issue(t, "svc-orders").TLS
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	c := newClient(t, client.Options{Address: addr, Token: "tok", TLS: &tls.Config{
		RootCAs: ca.Pool(), Certificates: []tls.Certificate{clientCert},
	}})
	if _, err := c.Lookup(ctx, "orders", false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctx, client.ConsumerOptions{Topic: "orders", Subscription: "s"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("Subscribe: %v, want the broker's refusal", err)
	}
	got := b.seen()
	if len(got) < 2 || got[len(got)-1].method != "Consume" {
		t.Fatalf("calls %+v, want lookups and a consume", got)
	}
	for _, p := range got {
		if p.certRole != "svc-orders" || len(p.authorization) != 1 || p.authorization[0] != "Bearer tok" {
			t.Fatalf("%s presented %+v, want the certificate svc-orders and the token", p.method, p)
		}
	}

	for name, opts := range map[string]client.Options{
		"plaintext":      {Address: addr, LookupTimeout: time.Second},
		"another CA":     {Address: addr, LookupTimeout: time.Second, TLS: &tls.Config{RootCAs: authtest.NewCA(t).Pool(), Certificates: []tls.Certificate{clientCert}}},
		"no certificate": {Address: addr, LookupTimeout: time.Second, TLS: &tls.Config{RootCAs: ca.Pool()}},
	} {
		if _, err := newClient(t, opts).Lookup(ctx, "orders", false); err == nil {
			t.Errorf("%s: lookup went through", name)
		}
	}
	if n := len(b.seen()); n != len(got) {
		t.Fatalf("the broker served %d calls, want only the %d of the good client", n, len(got))
	}
}

// adminRecorder is an admin API that records the Authorization header and
// the verified client certificate of each request.
type adminRecorder struct {
	mu       sync.Mutex
	requests []presented
}

func (a *adminRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := presented{method: r.Method + " " + r.URL.Path, authorization: r.Header.Values("Authorization")}
	if who, ok := auth.TLSPrincipal(r.TLS); ok {
		p.certRole = who.Role
	}
	a.mu.Lock()
	a.requests = append(a.requests, p)
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, "[]")
}

func (a *adminRecorder) seen() []presented {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]presented(nil), a.requests...)
}

func TestAdminSendsItsTokenAndClientCertificate(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("plaintext, with and without a token", func(t *testing.T) {
		rec := &adminRecorder{}
		srv := httptest.NewServer(rec)
		defer srv.Close()
		if _, err := client.NewAdminWithOptions(srv.URL, client.AdminOptions{Token: "adm.tok"}).ListTopics(ctx, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := client.NewAdmin(srv.URL).ListTopics(ctx, ""); err != nil {
			t.Fatal(err)
		}
		got := rec.seen()
		if len(got) != 2 || len(got[0].authorization) != 1 || got[0].authorization[0] != "Bearer adm.tok" || got[1].authorization != nil {
			t.Fatalf("requests %+v, want the token on the first only", got)
		}
	})

	t.Run("a failing token source sends nothing", func(t *testing.T) {
		rec := &adminRecorder{}
		srv := httptest.NewServer(rec)
		defer srv.Close()
		a := client.NewAdminWithOptions(srv.URL, client.AdminOptions{TokenSource: func(context.Context) (string, error) {
			return "", errors.New("expired refresh token")
		}})
		if _, err := a.ListTopics(ctx, ""); err == nil || !strings.Contains(err.Error(), "expired refresh token") {
			t.Fatalf("ListTopics: %v, want the source's error", err)
		}
		bad := client.NewAdminWithOptions(srv.URL, client.AdminOptions{Token: "a\nb"})
		if _, err := bad.ListTopics(ctx, ""); err == nil || !strings.Contains(err.Error(), "cannot carry") {
			t.Fatalf("ListTopics with a newline in the token: %v", err)
		}
		if got := rec.seen(); len(got) != 0 {
			t.Fatalf("requests %+v, want none", got)
		}
	})

	t.Run("TLS with a client certificate", func(t *testing.T) {
		ca := authtest.NewCA(t)
		rec := &adminRecorder{}
		srv := httptest.NewUnstartedServer(rec)
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
		srv.TLS = &tls.Config{
			Certificates: []tls.Certificate{ca.Issue(t, "broker").TLS},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    ca.Pool(),
		}
		srv.StartTLS()
		defer srv.Close()
		good := client.NewAdminWithOptions(srv.URL, client.AdminOptions{Token: "t", TLS: &tls.Config{
			RootCAs: ca.Pool(), Certificates: []tls.Certificate{ca.Issue(t, "ops").TLS},
		}})
		if _, err := good.ListTopics(ctx, ""); err != nil {
			t.Fatal(err)
		}
		noCert := client.NewAdminWithOptions(srv.URL, client.AdminOptions{TLS: &tls.Config{RootCAs: ca.Pool()}})
		if _, err := noCert.ListTopics(ctx, ""); err == nil {
			t.Fatal("a client without a certificate got through")
		}
		if _, err := client.NewAdmin(srv.URL).ListTopics(ctx, ""); err == nil {
			t.Fatal("a client trusting only the system's CAs got through")
		}
		got := rec.seen()
		if len(got) != 1 || got[0].certRole != "ops" || got[0].authorization[0] != "Bearer t" {
			t.Fatalf("requests %+v, want one from ops with its token", got)
		}
	})
}

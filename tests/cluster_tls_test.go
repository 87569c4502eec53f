package tests

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/bookie/bookiepb"
	"github.com/magnetar-mq/magnetar/client"
	"github.com/magnetar-mq/magnetar/internal/auth/authtest"
	"github.com/magnetar-mq/magnetar/metadata/metadatapb"
)

// clusterTLSFlags writes the cluster CA and a certificate it signed for
// name into files and returns the --cluster-tls.* flags naming them.
func clusterTLSFlags(t *testing.T, ca *authtest.CA, name string) []string {
	t.Helper()
	dir := t.TempDir()
	leaf := ca.Issue(t, name)
	files := map[string][]byte{"ca.pem": ca.CertPEM, name + ".pem": leaf.CertPEM, name + ".key": leaf.KeyPEM}
	for file, data := range files {
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"--cluster-tls.ca-file", filepath.Join(dir, "ca.pem"),
		"--cluster-tls.cert-file", filepath.Join(dir, name+".pem"), "--cluster-tls.key-file", filepath.Join(dir, name+".key")}
}

// A cluster of real processes with cluster TLS: three `magnetar meta`
// nodes, three `magnetar bookie` replicas of a shard (registered in the
// metadata service) and a `magnetar broker`, each with its own
// certificate of one cluster CA. Messages go through the broker and come
// back, so every internal link (meta and bookie Raft, bookie to meta,
// broker to meta and bookies) works over mutual TLS. Then strangers try
// the internal ports: a client without a certificate, one with another
// CA's certificate and a plaintext one are refused by the metadata
// service's and a bookie's gRPC and by both Raft ports, while a member's
// client is served.
func TestClusterTLSAdmitsMembersOnly(t *testing.T) {
	skipIfShort(t)
	ca := authtest.NewCA(t)
	metas, _ := startRoleCluster(t, "meta", "m", 3, clusterTLSFlags(t, ca, "meta")...)
	metaAddrs := strings.Join(grpcAddrs(metas), ",")
	bookies, _ := startRoleCluster(t, "bookie", "b", 3,
		append([]string{"--shards", "s1", "--meta-addrs", metaAddrs}, clusterTLSFlags(t, ca, "bookie")...)...)
	broker := startBroker(t, metaAddrs, clusterTLSFlags(t, ca, "broker")...)

	admin := client.NewAdmin(broker.adminURL())
	waitFor(t, 20*time.Second, "the shard to have a reporting leader", func() bool {
		ss, err := admin.ListShards(testContext(t, 5*time.Second))
		return err == nil && len(ss) == 1 && ss[0].Leader != ""
	})
	ctx := testContext(t, time.Minute)
	c, err := client.New(client.Options{Address: broker.nativeAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: "tls"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	for i := range n {
		if _, err := p.Send(ctx, &client.Message{Value: fmt.Appendf(nil, "m-%03d", i)}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	cons, err := c.Subscribe(ctx, client.ConsumerOptions{Topic: "tls", Subscription: "all", InitialPosition: client.Earliest})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for i := range n {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatalf("receive %d: %v", i, err)
		}
		if want := fmt.Sprintf("m-%03d", i); string(m.Value) != want {
			t.Fatalf("message %d is %q, want %q", i, m.Value, want)
		}
	}

	// A member's client (a certificate of the cluster CA) is served;
	// strangers are not.
	member := clientTLS(t, ca, clusterTLSFlags(t, ca, "member"))
	other := authtest.NewCA(t)
	foreign := clientTLS(t, ca, clusterTLSFlags(t, other, "foreign")) // trusts the servers; they must not trust it
	noCert := member.Clone()
	noCert.Certificates = nil
	strangers := map[string]*tls.Config{"no certificate": noCert, "another CA's certificate": foreign}

	grpcPorts := map[string]struct {
		addr string
		call func(cc *grpc.ClientConn) error
	}{
		"metadata gRPC": {metas[0].grpcAddr, func(cc *grpc.ClientConn) error {
			_, err := metadatapb.NewMetadataClient(cc).Status(testContext(t, 10*time.Second), &metadatapb.StatusRequest{})
			return err
		}},
		"bookie gRPC": {bookies[0].grpcAddr, func(cc *grpc.ClientConn) error {
			_, err := bookiepb.NewBookieClient(cc).List(testContext(t, 10*time.Second), &bookiepb.ListRequest{Shard: "s1", FollowerRead: true})
			return err
		}},
	}
	for port, g := range grpcPorts {
		if err := g.call(grpcConn(t, g.addr, credentials.NewTLS(member))); err != nil {
			t.Fatalf("%s refused a member: %v", port, err)
		}
		for name, cfg := range strangers {
			// Refused in the handshake, or (TLS 1.3) right after the
			// client's side of it ended: either way no call is served.
			if err := g.call(grpcConn(t, g.addr, credentials.NewTLS(cfg))); status.Code(err) != codes.Unavailable {
				t.Fatalf("%s, a client with %s: %v; want Unavailable", port, name, err)
			}
		}
		if err := g.call(grpcConn(t, g.addr, insecure.NewCredentials())); status.Code(err) != codes.Unavailable {
			t.Fatalf("%s, a plaintext client: %v; want Unavailable", port, err)
		}
	}

	raftPorts := map[string]struct{ addr, group string }{
		"metadata Raft": {metas[0].raftAddr, "meta"},
		"bookie Raft":   {bookies[0].raftAddr, "s1"},
	}
	for port, r := range raftPorts {
		header := append([]byte("MGRM\x01"), byte(len(r.group)))
		header = append(header, r.group...)
		for name, cfg := range strangers {
			err := raftStranger(t, r.addr, header, cfg)
			if err == nil || !strings.Contains(err.Error(), "tls") {
				t.Fatalf("%s, a client with %s: %v; want a TLS error", port, name, err)
			}
			t.Logf("%s, a client with %s: %v", port, name, err)
		}
		if err := raftStranger(t, r.addr, header, nil); err == nil {
			t.Fatalf("%s answered a plaintext connection", port)
		}
	}
	for _, p := range []*roleNode{metas[0], bookies[0]} {
		if !p.logContains("refusing a raft connection: TLS handshake failed") {
			t.Fatalf("%s %s did not log the Raft connections it refused", p.role, p.id)
		}
	}
}

// clientTLS is the client side of the cluster TLS that flags name, with
// ca's certificate as the root: what a process would dial with.
func clientTLS(t *testing.T, ca *authtest.CA, flags []string) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(flags[3], flags[5])
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, RootCAs: ca.Pool()}
}

func grpcConn(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// raftStranger connects to a Raft port (over TLS with cfg, else
// plaintext), sends a valid connection header and reads: it returns the
// error that ends the read (the server's refusal), or nil if the server
// kept the connection open for 5 seconds.
func raftStranger(t *testing.T, addr string, header []byte, cfg *tls.Config) error {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	var (
		c   net.Conn
		err error
	)
	if cfg != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, cfg)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return err // refused in the handshake
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(header); err != nil {
		return err
	}
	_, err = io.ReadFull(c, make([]byte, 1))
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	if err == nil {
		return errors.New("the server sent a byte to a stranger")
	}
	return err
}

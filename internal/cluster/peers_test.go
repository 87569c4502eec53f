package cluster_test

import (
	"errors"
	"flag"
	"io"
	"net"
	"reflect"
	"testing"

	"github.com/magnetar-mq/magnetar/internal/cluster"
	"github.com/magnetar-mq/magnetar/internal/raftnode"
)

const three = "b1=127.0.0.1:1=127.0.0.1:2,b2=127.0.0.1:3=127.0.0.1:4,b3=127.0.0.1:5=127.0.0.1:6"

func mustParse(t *testing.T, s string) cluster.Peers {
	t.Helper()
	ps, err := cluster.ParsePeers(s)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// The flag's text parses into peers, and String gives back the same text.
func TestParsePeersRoundTrips(t *testing.T) {
	t.Parallel()
	ps := mustParse(t, " "+three+", ")
	want := cluster.Peers{
		{ID: "b1", RaftAddr: "127.0.0.1:1", ClientAddr: "127.0.0.1:2"},
		{ID: "b2", RaftAddr: "127.0.0.1:3", ClientAddr: "127.0.0.1:4"},
		{ID: "b3", RaftAddr: "127.0.0.1:5", ClientAddr: "127.0.0.1:6"},
	}
	if !reflect.DeepEqual(ps, want) {
		t.Fatalf("ParsePeers = %+v, want %+v", ps, want)
	}
	if got := ps.String(); got != three {
		t.Fatalf("String() = %q, want %q", got, three)
	}
	if ps := mustParse(t, ""); ps != nil {
		t.Fatalf("ParsePeers(\"\") = %+v, want no peers", ps)
	}
	var nilPeers *cluster.Peers
	if got := nilPeers.String(); got != "" {
		t.Fatalf("nil String() = %q, want empty", got)
	}
}

// A peer that is not three non-empty fields is refused with
// ErrInvalidPeers, and the text names the peer without a prefix of its own.
func TestParsePeersRefusesMalformedPeers(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"b1=a:1", "b1=a:1=", "=a:1=b:2", "b1=a:1=b:2=c:3", three + ",b4"} {
		_, err := cluster.ParsePeers(bad)
		if !errors.Is(err, cluster.ErrInvalidPeers) {
			t.Errorf("ParsePeers(%q) = %v, want ErrInvalidPeers", bad, err)
		}
	}
	_, err := cluster.ParsePeers("b1=a:1")
	if got, want := err.Error(), `peer "b1=a:1": want id=raftaddr=clientaddr`; got != want {
		t.Errorf("error text %q, want %q", got, want)
	}
}

// Peers works as a flag.Value (and UnmarshalText as the YAML/env form): a
// later value replaces the earlier one, a bad one leaves it unchanged.
func TestPeersIsAFlagValue(t *testing.T) {
	t.Parallel()
	var ps cluster.Peers
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&ps, "peers", "")
	if err := fs.Parse([]string{"--peers", "x=h:1=h:2", "--peers", three}); err != nil {
		t.Fatal(err)
	}
	if ps.String() != three {
		t.Fatalf("after two --peers: %q, want the last", ps.String())
	}
	if err := ps.UnmarshalText([]byte("nope")); !errors.Is(err, cluster.ErrInvalidPeers) {
		t.Fatalf("UnmarshalText(nope) = %v, want ErrInvalidPeers", err)
	}
	if ps.String() != three {
		t.Fatalf("a refused value changed the peers to %q", ps.String())
	}
	if err := ps.UnmarshalText([]byte("a=h:1=h:2")); err != nil || len(ps) != 1 || ps[0].ID != "a" {
		t.Fatalf("UnmarshalText = %v, peers %+v; want the one peer a", err, ps)
	}
}

// Validate refuses a list that cannot form this node's group.
func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		peers string
		self  string
		ok    bool
	}{
		{"no peers is a group of one", "", "anyone", true},
		{"three peers including this node", three, "b2", true},
		{"this node is not a peer", three, "b9", false},
		{"an id twice", "b1=127.0.0.1:1=127.0.0.1:2,b1=127.0.0.1:3=127.0.0.1:4", "b1", false},
		{"a raft address without a port", "b1=localhost=127.0.0.1:2", "b1", false},
		{"a client address without a port", "b1=127.0.0.1:1=localhost", "b1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := mustParse(t, tc.peers).Validate(tc.self)
			if (err == nil) != tc.ok {
				t.Fatalf("Validate(%q) = %v, want ok=%v", tc.self, err, tc.ok)
			}
			if err != nil && !errors.Is(err, cluster.ErrInvalidPeers) {
				t.Fatalf("Validate(%q) = %v, want ErrInvalidPeers", tc.self, err)
			}
		})
	}
	// The address's own error stays reachable.
	err := mustParse(t, "b1=localhost=127.0.0.1:2").Validate("b1")
	var ae *net.AddrError
	if !errors.As(err, &ae) {
		t.Fatalf("Validate = %v, want a *net.AddrError inside", err)
	}
}

// Lookup finds a peer by ID; Raft keeps only what Raft needs, in order.
func TestLookupAndRaft(t *testing.T) {
	t.Parallel()
	ps := mustParse(t, three)
	if p, ok := ps.Lookup("b2"); !ok || p.ClientAddr != "127.0.0.1:4" {
		t.Fatalf("Lookup(b2) = %+v, %v", p, ok)
	}
	if _, ok := ps.Lookup("b9"); ok {
		t.Fatal("Lookup(b9) found a peer that is not there")
	}
	want := []raftnode.Peer{{ID: "b1", Address: "127.0.0.1:1"}, {ID: "b2", Address: "127.0.0.1:3"}, {ID: "b3", Address: "127.0.0.1:5"}}
	if got := ps.Raft(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Raft() = %+v, want %+v", got, want)
	}
	if got := cluster.Peers(nil).Raft(); got != nil {
		t.Fatalf("no peers: Raft() = %+v, want nil", got)
	}
}

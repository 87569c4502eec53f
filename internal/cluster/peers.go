package cluster

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/magnetar-mq/magnetar/internal/raftnode"
)

// ErrInvalidPeers is matched by every error ParsePeers, Peers.Set and
// Peers.Validate return.
var ErrInvalidPeers = errors.New("cluster: invalid peers")

// invalidError is an ErrInvalidPeers whose text is only its detail, so the
// role that wraps it in its own config error does not say it twice.
type invalidError struct{ detail error }

func (e *invalidError) Error() string   { return e.detail.Error() }
func (e *invalidError) Unwrap() []error { return []error{ErrInvalidPeers, e.detail} }

func invalid(format string, args ...any) error {
	return &invalidError{detail: fmt.Errorf(format, args...)}
}

// Peer is one member of a replicated group.
type Peer struct {
	// ID is its Raft server ID.
	ID string
	// RaftAddr is where the other members reach its Raft transport.
	RaftAddr string
	// ClientAddr is where clients reach its gRPC service; a follower sends
	// clients there when this peer is the leader.
	ClientAddr string
}

// Peers is a group's members; as a flag it reads
// "id=raftaddr=clientaddr,id=raftaddr=clientaddr,...".
type Peers []Peer

// String formats the peers as the flag reads them.
func (p *Peers) String() string {
	if p == nil {
		return ""
	}
	parts := make([]string, len(*p))
	for i, x := range *p {
		parts[i] = x.ID + "=" + x.RaftAddr + "=" + x.ClientAddr
	}
	return strings.Join(parts, ",")
}

// Set parses "id=raftaddr=clientaddr,..." (replacing any earlier value).
func (p *Peers) Set(s string) error {
	ps, err := ParsePeers(s)
	if err != nil {
		return err
	}
	*p = ps
	return nil
}

// UnmarshalText lets YAML and environment values use the flag's format.
func (p *Peers) UnmarshalText(b []byte) error { return p.Set(string(b)) }

// ParsePeers parses "id=raftaddr=clientaddr,..."; an empty string is no
// peers. It checks only the syntax (three non-empty fields per peer);
// Validate checks the list.
func ParsePeers(s string) (Peers, error) {
	var out Peers
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		f := strings.Split(part, "=")
		if len(f) != 3 || f[0] == "" || f[1] == "" || f[2] == "" {
			return nil, invalid("peer %q: want id=raftaddr=clientaddr", part)
		}
		out = append(out, Peer{ID: f[0], RaftAddr: f[1], ClientAddr: f[2]})
	}
	return out, nil
}

// Validate reports a list that cannot form the group of node self: an ID
// that appears twice, an address that is not host:port, or self not among
// the peers. No peers is valid (a group of one). How many peers a role
// accepts is the role's rule, not checked here.
func (p Peers) Validate(self string) error {
	ids := make(map[string]bool, len(p))
	found := len(p) == 0
	for _, x := range p {
		if ids[x.ID] {
			return invalid("peer id %q appears twice", x.ID)
		}
		ids[x.ID] = true
		found = found || x.ID == self
		for _, a := range []string{x.RaftAddr, x.ClientAddr} {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return invalid("peer %s: %w", x.ID, err)
			}
		}
	}
	if !found {
		return invalid("node id %q is not among the peers", self)
	}
	return nil
}

// Lookup returns the peer with the given Raft ID.
func (p Peers) Lookup(id string) (Peer, bool) {
	for _, x := range p {
		if x.ID == id {
			return x, true
		}
	}
	return Peer{}, false
}

// Raft returns the peers as raftnode's initial voters (nil for no peers).
func (p Peers) Raft() []raftnode.Peer {
	var out []raftnode.Peer
	for _, x := range p {
		out = append(out, raftnode.Peer{ID: x.ID, Address: x.RaftAddr})
	}
	return out
}

package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/magnetar-mq/magnetar/bookie"
)

// shardSpec is one shard a bookie process hosts a replica of.
type shardSpec struct {
	ID string
	// Members are the shard's bookie IDs; nil: every bookie of --peers.
	Members []string
}

// shardSpecs is the --shards flag: "id[:member+member+...],...".
type shardSpecs []shardSpec

func (s *shardSpecs) String() string {
	var parts []string
	for _, sp := range *s {
		if len(sp.Members) == 0 {
			parts = append(parts, sp.ID)
		} else {
			parts = append(parts, sp.ID+":"+strings.Join(sp.Members, "+"))
		}
	}
	return strings.Join(parts, ",")
}

func (s *shardSpecs) Set(v string) error {
	var out shardSpecs
	seen := map[string]bool{}
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, members, hasMembers := strings.Cut(part, ":")
		if id == "" || strings.ContainsAny(id, "/ ") {
			return fmt.Errorf("shard %q: the id must be non-empty, without '/' or spaces", part)
		}
		if seen[id] {
			return fmt.Errorf("shard %q appears twice", id)
		}
		seen[id] = true
		sp := shardSpec{ID: id}
		if hasMembers {
			for m := range strings.SplitSeq(members, "+") {
				if m == "" || slices.Contains(sp.Members, m) {
					return fmt.Errorf("shard %q: members %q must be distinct bookie ids joined by '+'", id, members)
				}
				sp.Members = append(sp.Members, m)
			}
		}
		out = append(out, sp)
	}
	*s = out
	return nil
}

// UnmarshalText lets the YAML file and the environment set it.
func (s *shardSpecs) UnmarshalText(b []byte) error { return s.Set(string(b)) }

// hostedShard is a shard this process hosts, with its replicas.
type hostedShard struct {
	ID    string
	Peers bookie.Peers // the members, from the --peers address book
}

// resolve returns the shards that include self, each with its members'
// entries of the address book peers (empty: every shard is this process
// alone, without network replication).
func (s shardSpecs) resolve(self string, peers bookie.Peers) ([]hostedShard, error) {
	var out []hostedShard
	for _, sp := range s {
		if len(peers) == 0 {
			if len(sp.Members) > 0 && !slices.Equal(sp.Members, []string{self}) {
				return nil, fmt.Errorf("shard %s names members %v, but --peers is empty", sp.ID, sp.Members)
			}
			out = append(out, hostedShard{ID: sp.ID})
			continue
		}
		if len(sp.Members) == 0 {
			out = append(out, hostedShard{ID: sp.ID, Peers: peers})
			continue
		}
		if !slices.Contains(sp.Members, self) {
			continue // another process's shard
		}
		var ps bookie.Peers
		for _, m := range sp.Members {
			p, ok := peers.Lookup(m)
			if !ok {
				return nil, fmt.Errorf("shard %s: member %q is not in --peers", sp.ID, m)
			}
			ps = append(ps, p)
		}
		out = append(out, hostedShard{ID: sp.ID, Peers: ps})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("none of --shards %s has %q as a member", s.String(), self)
	}
	return out, nil
}

// Package cluster is the membership of a replicated role (the metadata
// service, a bookie shard) as an operator writes it: every peer's Raft
// server ID, the address its Raft transport listens on, and the address
// its clients reach it at.
//
// The model: a cluster is a fixed list of Peers, the same on every member
// and given once, as --peers "id=raftaddr=clientaddr,..." (a flag.Value,
// which also reads YAML and environment values through UnmarshalText).
// ParsePeers checks the syntax; Peers.Validate checks the list as a
// whole: unique IDs, host:port addresses, and this node among them. Raft
// needs only the first two fields (Peers.Raft gives raftnode's view); the
// client address is how a follower names the leader to a client, found
// with Peers.Lookup.
//
// Every error of this package matches ErrInvalidPeers with errors.Is, and
// its text is only the detail ("peer id "b1" appears twice"), so the role
// wraps it in its own config error ("bookie: invalid config: ...").
//
// It is separate from internal/raftnode, which runs one Raft node and
// knows its peers only as Raft ID and address: the client-facing address
// is the roles' concern, not Raft's.
package cluster

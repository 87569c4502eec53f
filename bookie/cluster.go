package bookie

import (
	"context"
	"errors"
	"fmt"

	"github.com/magnetar-mq/magnetar/internal/cluster"
)

// ErrUnknownOutcome means a write was sent but its result is unknown: the
// leader lost its leadership, or the connection to it broke, while the
// write was in flight, so it may or may not be stored. A writer resolves it
// as after a crash: it seals the segment (Seal returns where it ends) and
// carries on from there.
var ErrUnknownOutcome = errors.New("bookie: outcome unknown")

// NotLeaderError is returned by a replica that is not its shard's leader,
// for writes and linearizable reads. errors.Is(err, ErrNotLeader) holds.
type NotLeaderError struct {
	// LeaderID and LeaderAddr name the leader and its gRPC address; both
	// are empty while no leader is known (an election is under way).
	LeaderID   string
	LeaderAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" && e.LeaderAddr == "" {
		return ErrNotLeader.Error() + " (no leader known)"
	}
	return fmt.Sprintf("%v (leader %s at %s)", ErrNotLeader, e.LeaderID, e.LeaderAddr)
}

// Is makes errors.Is(err, ErrNotLeader) hold.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

type followerReadsKey struct{}

// WithFollowerReads returns a context under which Read and Info may be
// served by any replica of the shard from the state it has applied, without
// checking leadership. What a follower returns is bounded by its applied
// prefix of the Raft log: every entry it returns is committed and
// byte-identical to the leader's (entries never change once stored), but
// it may return fewer entries than exist, none ("not yet"), report a
// segment still open that the leader has sealed, or not know a segment
// yet. Without it, Read and Info are linearizable and only the leader
// answers them.
func WithFollowerReads(ctx context.Context) context.Context {
	return context.WithValue(ctx, followerReadsKey{}, true)
}

func followerReads(ctx context.Context) bool {
	v, _ := ctx.Value(followerReadsKey{}).(bool)
	return v
}

// Peer is one replica of a shard: its Raft server ID, where the other
// replicas reach its Raft transport, and where clients reach its gRPC
// service (a follower sends clients there when this peer is the leader).
type Peer = cluster.Peer

// Peers is a shard's replicas; as a flag it reads
// "id=raftaddr=clientaddr,id=raftaddr=clientaddr,...".
type Peers = cluster.Peers

// ParsePeers parses "id=raftaddr=clientaddr,..."; an empty string is no
// peers. Its errors wrap ErrInvalidConfig.
func ParsePeers(s string) (Peers, error) {
	ps, err := cluster.ParsePeers(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return ps, nil
}

package native

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Keepalive of the native listener. Clients ping a silent connection (the
// Go client every 10s, gRPC's least) to find a broker that is paused or cut
// off; the server accepts pings down to MinClientPing apart, even without
// a stream open, and pings a client silent for ClientIdle itself, closing
// the connection when the ping gets no answer within ClientPingTimeout,
// so a vanished consumer's streams end and its unacknowledged messages go
// to other consumers.
const (
	MinClientPing     = 5 * time.Second
	ClientIdle        = 30 * time.Second
	ClientPingTimeout = 10 * time.Second
)

// GRPCServerOptions are the options of a gRPC server serving the native
// protocol: keepalive as above, connections with no stream closed after
// limits.ConnectionsMaxIdle, at most limits.MaxStreamsPerConnection
// streams on one, headers up to 64 KiB, and messages up to maxMessageBytes
// plus room for the request around them.
func GRPCServerOptions(maxMessageBytes int, limits Limits) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxMessageBytes + 1<<20),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: MinClientPing, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time: ClientIdle, Timeout: ClientPingTimeout, MaxConnectionIdle: limits.ConnectionsMaxIdle,
		}),
		grpc.MaxConcurrentStreams(uint32(limits.MaxStreamsPerConnection)),
		grpc.MaxHeaderListSize(maxHeaderListBytes),
	}
}

package native

import (
	"errors"
	"flag"
	"net"
	"time"

	"github.com/magnetar-mq/magnetar/internal/connlimit"
)

// Limits bound what clients of the native listener may hold: connections
// (in all and per IP address, closed at once beyond), and how long a
// connection with no stream open is kept. A request's size is bounded by
// the broker's max-message-bytes (GRPCServerOptions), and a stream's
// in-flight batches by maxInFlight and gRPC flow control.
type Limits struct {
	MaxConnections      int           `yaml:"max-connections"`
	MaxConnectionsPerIP int           `yaml:"max-connections-per-ip"`
	ConnectionsMaxIdle  time.Duration `yaml:"connections-max-idle"`
	// MaxStreamsPerConnection bounds the calls and streams open at once
	// on one connection (a client opens one per partition it produces to
	// or consumes from, on each broker).
	MaxStreamsPerConnection int `yaml:"max-streams-per-connection"`
}

// maxHeaderListBytes bounds a call's headers, read before it is
// authenticated: a token is at most 16 KiB.
const maxHeaderListBytes = 64 << 10

// RegisterFlags registers the limits under prefix (e.g. "native.").
func (l *Limits) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.IntVar(&l.MaxConnections, prefix+"max-connections", 10000, "most open native connections; more are closed at once")
	fs.IntVar(&l.MaxConnectionsPerIP, prefix+"max-connections-per-ip", 1000, "most open native connections from one IP address; more are closed at once")
	fs.DurationVar(&l.ConnectionsMaxIdle, prefix+"connections-max-idle", 10*time.Minute, "close a native connection with no stream or call open for this long (clients reconnect when they need to)")
	fs.IntVar(&l.MaxStreamsPerConnection, prefix+"max-streams-per-connection", 10000, "most calls and streams open at once on one native connection (one per partition a client produces to or consumes from)")
}

// Validate reports limits that cannot work.
func (l *Limits) Validate() error {
	if l.MaxConnections <= 0 || l.MaxConnectionsPerIP <= 0 || l.ConnectionsMaxIdle <= 0 || l.MaxStreamsPerConnection <= 0 {
		return errors.New("native: max-connections, max-connections-per-ip, connections-max-idle and max-streams-per-connection must be positive")
	}
	return nil
}

// Listener caps ln's connections.
func (l *Limits) Listener(ln net.Listener) *connlimit.Listener {
	return connlimit.Wrap(ln, l.MaxConnections, l.MaxConnectionsPerIP)
}

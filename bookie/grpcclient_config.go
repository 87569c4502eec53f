package bookie

import (
	"flag"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Defaults of ClientConfig.
const (
	// DefaultWriteTimeout is ClientConfig.WriteTimeout's default: a
	// leader that stopped answering (paused, or cut off by the network)
	// costs a writer this long, then the shard's next leader takes over.
	DefaultWriteTimeout = 2 * time.Second
	// DefaultReadTimeout is ClientConfig.ReadTimeout's default.
	DefaultReadTimeout = 3 * time.Second
	// DefaultKeepaliveTime is ClientConfig.KeepaliveTime's default, the
	// shortest interval gRPC allows a client.
	DefaultKeepaliveTime = 10 * time.Second
	// DefaultKeepaliveTimeout is ClientConfig.KeepaliveTimeout's default.
	DefaultKeepaliveTimeout = 5 * time.Second
)

// keepaliveMinTime is the shortest ping interval a bookie's gRPC server
// accepts from a client (GRPCServerOptions); gRPC raises a client's
// interval to at least 10 s, so every client is within it.
const keepaliveMinTime = 5 * time.Second

// ClientConfig configures the connections and calls of RemoteClients
// (NewConnsConfig; NewConns and DialShard use DefaultClientConfig).
//
// Each attempt of a call on one replica has a deadline: WriteTimeout for
// CreateSegment, Append, Seal and DeleteSegment, ReadTimeout for Read,
// Info and ListSegments. A replica that misses it is taken for gone: the
// client stops sending it calls for a while and looks for the shard's
// leader among the others, as after a broken connection. A write that
// missed it has an unknown outcome (ErrUnknownOutcome; a writer seals the
// segment to learn where it ends); a read or a seal is tried on the other
// replicas. So a timeout must exceed the slowest answer a healthy replica
// gives under load (an append waiting for room in the shard's
// --max-inflight-bytes, a Read of 16 MiB), and it bounds how long a shard
// stalls when its leader stops answering without closing its connections
// (a paused process, a network that drops packets): about the timeout,
// since the other replicas elect a new leader meanwhile.
//
// Keepalive pings find a connection whose peer is gone without closing
// it, so that calls stop being sent on it; gRPC allows a client no ping
// interval under 10 s.
type ClientConfig struct {
	WriteTimeout     time.Duration `yaml:"write-timeout"`
	ReadTimeout      time.Duration `yaml:"read-timeout"`
	KeepaliveTime    time.Duration `yaml:"keepalive-time"`
	KeepaliveTimeout time.Duration `yaml:"keepalive-timeout"`
}

// DefaultClientConfig returns the defaults RegisterFlags sets.
func DefaultClientConfig() ClientConfig {
	return ClientConfig{
		WriteTimeout:     DefaultWriteTimeout,
		ReadTimeout:      DefaultReadTimeout,
		KeepaliveTime:    DefaultKeepaliveTime,
		KeepaliveTimeout: DefaultKeepaliveTimeout,
	}
}

// RegisterFlags registers the config's flags, with defaults, under prefix.
func (c *ClientConfig) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.DurationVar(&c.WriteTimeout, prefix+"write-timeout", DefaultWriteTimeout, "Deadline of one attempt of a write (create, append, seal, delete) on one bookie replica; a leader that misses it is avoided and its shard's new leader found. Set it above the slowest append under load.")
	fs.DurationVar(&c.ReadTimeout, prefix+"read-timeout", DefaultReadTimeout, "Deadline of one attempt of a read (read, info, list) on one bookie replica; a read that misses it is tried on the other replicas.")
	fs.DurationVar(&c.KeepaliveTime, prefix+"keepalive-time", DefaultKeepaliveTime, "Interval of keepalive pings on an idle bookie connection (at least 10s).")
	fs.DurationVar(&c.KeepaliveTimeout, prefix+"keepalive-timeout", DefaultKeepaliveTimeout, "How long a keepalive ping may go unanswered before the bookie connection is closed.")
}

// EnsureDefaults fills in unset fields.
func (c *ClientConfig) EnsureDefaults() {
	d := DefaultClientConfig()
	if c.WriteTimeout == 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = d.ReadTimeout
	}
	if c.KeepaliveTime == 0 {
		c.KeepaliveTime = d.KeepaliveTime
	}
	if c.KeepaliveTimeout == 0 {
		c.KeepaliveTimeout = d.KeepaliveTimeout
	}
}

// Validate reports a config that cannot work.
func (c *ClientConfig) Validate() error {
	switch {
	case c.WriteTimeout < 0 || c.ReadTimeout < 0 || c.KeepaliveTime < 0 || c.KeepaliveTimeout < 0:
		return fmt.Errorf("%w: bookie client timeouts must not be negative", ErrInvalidConfig)
	case c.WriteTimeout > 0 && c.WriteTimeout < 10*time.Millisecond, c.ReadTimeout > 0 && c.ReadTimeout < 10*time.Millisecond:
		return fmt.Errorf("%w: bookie client timeouts under 10ms", ErrInvalidConfig)
	}
	return nil
}

// keepalive is the dial option of the config's keepalive pings. They are
// sent on idle connections too: a broker's connection to a shard it
// rarely writes must be found dead before a call waits on it.
func (c ClientConfig) keepalive() grpc.DialOption {
	return grpc.WithKeepaliveParams(keepalive.ClientParameters{
		Time:                c.KeepaliveTime,
		Timeout:             c.KeepaliveTimeout,
		PermitWithoutStream: true,
	})
}

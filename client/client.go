package client

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/magnetar-mq/magnetar/protocol/native/nativepb"
)

// Errors returned by the client. Errors from the broker keep their gRPC
// status (inspect them with google.golang.org/grpc/status).
var (
	// ErrClosed means the client, producer or consumer has been closed.
	ErrClosed = errors.New("client: closed")
	// ErrConnectionLost means the stream a message was sent on broke before
	// its receipt came back: the message may or may not have been stored.
	ErrConnectionLost = errors.New("client: connection lost before the receipt; the message may have been stored")
)

// Options configure a Client.
type Options struct {
	// Address is a broker's native-protocol address, host:port, or several
	// separated by commas: lookups go to any of them (and to the brokers
	// they report), and each partition's streams to the broker that owns
	// it (see route.go). Default 127.0.0.1:6650.
	Address string
	// Logger receives the client's logs; default: discarded.
	Logger *slog.Logger
	// LookupTimeout bounds a lookup sent to one broker: one that does not
	// answer in time (paused, cut off by the network) is passed over for
	// the next known broker. Default 5s.
	LookupTimeout time.Duration
	// KeepAlive is how long a broker connection may stay silent before the
	// client pings the broker; a broker that does not answer the ping
	// within KeepAliveTimeout is taken as gone, and the streams on it are
	// opened again on the partition's owner. It finds a broker that is
	// paused or cut off by the network, which never closes its
	// connections. Default 10s, gRPC's least; brokers accept pings every
	// 5s.
	KeepAlive time.Duration
	// KeepAliveTimeout: see KeepAlive. Default 5s.
	KeepAliveTimeout time.Duration

	// Token is a JWT the client authenticates with: every call and
	// stream carries it as the gRPC metadata "authorization: Bearer
	// <token>", and the broker takes its "sub" claim as the role. It is
	// sent over plaintext connections too (TLS nil), where anyone on the
	// path can read and replay it: fine on a development machine; set TLS
	// everywhere else.
	Token string
	// TokenSource, instead of Token, returns the token of each call and
	// stream, e.g. to renew one before it expires. An error it returns
	// fails the call with codes.Unauthenticated.
	TokenSource func(ctx context.Context) (string, error)
	// TLS, when set, secures the connections to the brokers (nil:
	// plaintext). The server name checked is TLS.ServerName, else each
	// broker's host. Certificates in it are presented to brokers that ask
	// for one (mTLS): a broker that verifies a client certificate takes its
	// subject common name as the role.
	TLS *tls.Config
}

// Defaults of Options.
const (
	DefaultLookupTimeout    = 5 * time.Second
	DefaultKeepAlive        = 10 * time.Second
	DefaultKeepAliveTimeout = 5 * time.Second
)

// Client is a connection to a Magnetar cluster: one gRPC connection per
// broker it talks to. It is safe for concurrent use; create producers and
// consumers from it and Close it last.
type Client struct {
	log      *slog.Logger
	opts     Options           // with defaults
	security []grpc.DialOption // transport and per-call credentials (credentials.go)

	mu struct {
		sync.Mutex
		closed      bool
		conns       map[string]*grpc.ClientConn // by broker address
		lookupAddrs []string                    // given, then learnt from lookups
		preferred   int                         // index in lookupAddrs of the last to answer
		routes      map[string]*topicRoute      // by canonical topic name
	}
}

// New returns a client for the brokers at opts.Address. It connects
// lazily: an unreachable broker shows up as errors of the first call.
func New(opts Options) (*Client, error) {
	addrs := splitAddrs(opts.Address)
	if len(addrs) == 0 {
		addrs = []string{"127.0.0.1:6650"}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.LookupTimeout = cmp.Or(opts.LookupTimeout, DefaultLookupTimeout)
	opts.KeepAlive = cmp.Or(opts.KeepAlive, DefaultKeepAlive)
	opts.KeepAliveTimeout = cmp.Or(opts.KeepAliveTimeout, DefaultKeepAliveTimeout)
	security, err := securityOptions(opts)
	if err != nil {
		return nil, err
	}
	c := &Client{log: opts.Logger.With("component", "client"), opts: opts, security: security}
	c.mu.conns = make(map[string]*grpc.ClientConn)
	c.mu.routes = make(map[string]*topicRoute)
	c.mu.lookupAddrs = addrs
	if _, err := c.conn(addrs[0]); err != nil { // an address gRPC cannot parse fails now
		return nil, err
	}
	return c, nil
}

// Close closes the connections. Close producers and consumers first.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return nil
	}
	c.mu.closed = true
	var errs []error
	for _, cc := range c.mu.conns {
		errs = append(errs, cc.Close())
	}
	return errors.Join(errs...)
}

// service returns the native-protocol service to use for one partition of
// a topic: the owner's, with streams that follow the partition when it
// moves (route.go).
func (c *Client) service(ctx context.Context, topic string, partition int32) (nativepb.MagnetarClient, error) {
	return c.routed(ctx, topic, partition)
}

// TopicInfo describes a topic as the broker knows it.
type TopicInfo struct {
	// Name is the canonical name, tenant/namespace/topic.
	Name       string
	Partitions int32
}

// Lookup resolves a topic; with autoCreate a missing topic is created with
// one partition if the broker allows it.
func (c *Client) Lookup(ctx context.Context, topic string, autoCreate bool) (TopicInfo, error) {
	resp, err := c.lookup(ctx, &nativepb.LookupRequest{Topic: topic, AutoCreate: autoCreate})
	if err != nil {
		return TopicInfo{}, fmt.Errorf("client: lookup %s: %w", topic, err)
	}
	return TopicInfo{Name: resp.GetTopic(), Partitions: resp.GetPartitions()}, nil
}

// PartitionOwners looks a topic up and returns the native address of the
// broker serving each partition.
func (c *Client) PartitionOwners(ctx context.Context, topic string) ([]string, error) {
	resp, err := c.lookup(ctx, &nativepb.LookupRequest{Topic: topic})
	if err != nil {
		return nil, fmt.Errorf("client: lookup %s: %w", topic, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.mu.routes[resp.GetTopic()].owners), nil
}

// Message is what producers send and consumers receive.
type Message struct {
	// Key routes the message to a partition (same key, same partition) and
	// is kept with it. Optional.
	Key   []byte
	Value []byte
	// Properties are application headers.
	Properties map[string]string
	// EventTime is the application's time of the message; zero means the
	// publish time.
	EventTime time.Time
	// DeliverAt delays the message: Shared and Key_Shared subscriptions
	// deliver it no earlier than this (Exclusive and Failover ones deliver
	// in order and ignore it). Zero means at once.
	DeliverAt time.Time
}

// MessageID identifies a stored message: its partition and offset.
type MessageID struct {
	Partition int32
	Offset    int64
}

func (id MessageID) String() string { return fmt.Sprintf("%d:%d", id.Partition, id.Offset) }

func toProto(m *Message) *nativepb.Message {
	// A message without an event time gets the time it is sent, here and
	// not by the broker: a batch sent again (after a broken stream) is then
	// the same batch, byte for byte, which the broker needs to recognise it.
	pm := &nativepb.Message{Key: m.Key, Value: m.Value, EventTimeMs: time.Now().UnixMilli()}
	if !m.EventTime.IsZero() {
		pm.EventTimeMs = m.EventTime.UnixMilli()
	}
	if !m.DeliverAt.IsZero() {
		pm.DeliverAtMs = unixMilliCeil(m.DeliverAt)
	}
	if len(m.Properties) > 0 {
		pm.Headers = make([]*nativepb.Header, 0, len(m.Properties))
		for k, v := range m.Properties {
			pm.Headers = append(pm.Headers, &nativepb.Header{Key: k, Value: []byte(v)})
		}
	}
	return pm
}

// unixMilliCeil is t in Unix milliseconds, rounded up: a message is
// delivered no earlier than its DeliverAt, so a time between two
// milliseconds goes to the later one.
func unixMilliCeil(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.After(time.UnixMilli(ms)) {
		ms++
	}
	return ms
}

func fromProto(pm *nativepb.Message) Message {
	m := Message{Key: pm.GetKey(), Value: pm.GetValue()}
	if ms := pm.GetEventTimeMs(); ms != 0 {
		m.EventTime = time.UnixMilli(ms)
	}
	if ms := pm.GetDeliverAtMs(); ms != 0 {
		m.DeliverAt = time.UnixMilli(ms)
	}
	if hs := pm.GetHeaders(); len(hs) > 0 {
		m.Properties = make(map[string]string, len(hs))
		for _, h := range hs {
			m.Properties[h.GetKey()] = string(h.GetValue())
		}
	}
	return m
}

// keyPartition maps a key to a partition (FNV-1a), so that one key's
// messages keep their order.
func keyPartition(key []byte, partitions int32) int32 {
	h := fnv.New32a()
	h.Write(key)
	return int32(h.Sum32() % uint32(partitions))
}

package client

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

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
	// Address is the broker's native-protocol address, host:port. Default
	// 127.0.0.1:6650.
	Address string
	// Logger receives the client's logs; default: discarded.
	Logger *slog.Logger
}

// Client is a connection to a Magnetar cluster. It is safe for concurrent
// use; create producers and consumers from it and Close it last.
type Client struct {
	conn *grpc.ClientConn
	svc  nativepb.MagnetarClient
	log  *slog.Logger
}

// New returns a client for the broker at opts.Address. It connects lazily:
// an unreachable broker shows up as errors of the first call.
func New(opts Options) (*Client, error) {
	if opts.Address == "" {
		opts.Address = "127.0.0.1:6650"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	conn, err := grpc.NewClient(opts.Address,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)),
	)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Client{conn: conn, svc: nativepb.NewMagnetarClient(conn), log: opts.Logger.With("component", "client")}, nil
}

// Close closes the connection. Close producers and consumers first.
func (c *Client) Close() error { return c.conn.Close() }

// service returns the native-protocol service to use for one partition of
// a topic.
func (c *Client) service(_ context.Context, _ string, _ int32) (nativepb.MagnetarClient, error) {
	return c.svc, nil
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
	resp, err := c.svc.Lookup(ctx, &nativepb.LookupRequest{Topic: topic, AutoCreate: autoCreate})
	if err != nil {
		return TopicInfo{}, fmt.Errorf("client: lookup %s: %w", topic, err)
	}
	return TopicInfo{Name: resp.GetTopic(), Partitions: resp.GetPartitions()}, nil
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
	pm := &nativepb.Message{Key: m.Key, Value: m.Value}
	if !m.EventTime.IsZero() {
		pm.EventTimeMs = m.EventTime.UnixMilli()
	}
	if !m.DeliverAt.IsZero() {
		pm.DeliverAtMs = m.DeliverAt.UnixMilli()
	}
	if len(m.Properties) > 0 {
		pm.Headers = make([]*nativepb.Header, 0, len(m.Properties))
		for k, v := range m.Properties {
			pm.Headers = append(pm.Headers, &nativepb.Header{Key: k, Value: []byte(v)})
		}
	}
	return pm
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

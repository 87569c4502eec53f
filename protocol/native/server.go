package native

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/internal/errmap"
	"github.com/magnetar-mq/magnetar/internal/record"
	"github.com/magnetar-mq/magnetar/protocol/native/nativepb"
)

// maxInFlight bounds the batches one producer stream may have waiting for
// storage; past it the stream stops reading, which pushes back on the
// client through gRPC flow control.
const maxInFlight = 1024

// Server serves the native protocol for one broker.
type Server struct {
	nativepb.UnimplementedMagnetarServer
	b          *broker.Broker
	advertised string
	log        *slog.Logger
	// streams holds the goroutines that outlive a stream's handler by a
	// moment (Produce's receiver, Consume's request loop); Wait waits for
	// them.
	streams sync.WaitGroup
}

// NewServer returns the native-protocol service of b; advertised is the
// host:port clients should use to reach this broker.
func NewServer(b *broker.Broker, advertised string, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{b: b, advertised: advertised, log: log.With("component", "native")}
}

// Register adds the service to a gRPC server.
func (s *Server) Register(g *grpc.Server) { nativepb.RegisterMagnetarServer(g, s) }

// Wait waits for the goroutines of the streams served; call it once the
// gRPC server has stopped.
func (s *Server) Wait() { s.streams.Wait() }

// Lookup implements nativepb.MagnetarServer.
func (s *Server) Lookup(ctx context.Context, req *nativepb.LookupRequest) (*nativepb.LookupResponse, error) {
	name, err := s.b.ParseTopic(req.GetTopic())
	if err != nil {
		return nil, errmap.GRPCStatus(err)
	}
	if err := s.b.AuthorizeTopic(ctx, name, broker.ActionProduce|broker.ActionConsume); err != nil {
		return nil, errmap.GRPCStatus(err)
	}
	info, err := s.b.Topic(ctx, name, req.GetAutoCreate())
	if err != nil {
		return nil, errmap.GRPCStatus(err)
	}
	resp := &nativepb.LookupResponse{Topic: name.String(), Partitions: info.Partitions, BrokerAddress: s.advertised}
	if s.b.ID() == "" {
		return resp, nil // no ownership: this broker serves every partition
	}
	if err := s.lookupOwners(ctx, name, info.Partitions, resp); err != nil {
		return nil, errmap.GRPCStatus(err)
	}
	return resp, nil
}

type inflight struct {
	seq    uint64
	count  int32
	future broker.Future
	err    error
}

// Produce implements nativepb.MagnetarServer.
func (s *Server) Produce(stream nativepb.Magnetar_ProduceServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	open := first.GetOpen()
	if open == nil {
		return status.Error(codes.InvalidArgument, "native: the first produce request must be open")
	}
	name, err := s.b.ParseTopic(open.GetTopic())
	if err != nil {
		return errmap.GRPCStatus(err)
	}
	if err := s.b.AuthorizeTopic(ctx, name, broker.ActionProduce); err != nil {
		return errmap.GRPCStatus(err)
	}
	info, err := s.b.Topic(ctx, name, true)
	if err != nil {
		return errmap.GRPCStatus(err)
	}
	if open.GetPartition() < 0 || open.GetPartition() >= info.Partitions {
		return errmap.GRPCStatus(fmt.Errorf("%w: %s has %d partitions", broker.ErrPartitionNotFound, name, info.Partitions))
	}
	partition := open.GetPartition()
	if err := s.b.CheckOwner(ctx, name, partition); err != nil {
		return s.status(ctx, err)
	}
	lease, err := s.b.AttachProducer(ctx, name, partition, broker.ProducerAccessMode(open.GetAccessMode()))
	if err != nil {
		return s.status(ctx, err)
	}
	defer lease.Release()
	producerID := open.GetProducerId()
	if producerID < 0 {
		return status.Errorf(codes.InvalidArgument, "native: producer id %d", producerID)
	}
	if producerID != 0 && s.b.CheckProducerID(ctx, producerID) != nil {
		// Not issued to this role (or by this cluster): a producer
		// may only resume its own ID. It gets a new one, under which
		// its batches are new.
		s.log.Debug("producer presented an id not issued to its role; issuing a new one", "topic", name.String(), "producer_id", producerID)
		producerID = 0
	}
	if producerID == 0 {
		if producerID, err = s.b.NewProducerID(ctx); err != nil {
			return s.status(ctx, err)
		}
	}
	if err := stream.Send(&nativepb.ProduceResponse{Kind: &nativepb.ProduceResponse_Opened{
		Opened: &nativepb.ProducerOpened{Topic: name.String(), Partition: partition, ProducerId: producerID},
	}}); err != nil {
		return err
	}

	// The receiver takes the producer's batches and queues them; this
	// goroutine answers them in order (sendReceipts). It ends the stream as
	// soon as it must, without waiting for the receiver: that one is
	// blocked in Recv until the stream ends, and a producer waiting for
	// this answer before it sends again never ends it itself. The receiver
	// then returns (its Recv fails once the handler has returned), and
	// s.streams waits for it at shutdown.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pending := make(chan inflight, maxInFlight)
	r := &receiver{s: s, stream: stream, name: name, partition: partition, producerID: producerID, pending: pending}
	received := make(chan error, 1)
	s.streams.Go(func() { received <- r.run(rctx) })
	if err := s.sendReceipts(rctx, stream, pending); err != nil {
		return s.status(ctx, err)
	}
	// pending is closed: the receiver is done.
	if err := <-received; err != nil {
		return s.status(ctx, err)
	}
	return s.status(ctx, r.end)
}

// receiver reads a producer's batches from its stream and queues them for
// sendReceipts.
type receiver struct {
	s          *Server
	stream     nativepb.Magnetar_ProduceServer
	name       broker.TopicName
	partition  int32
	producerID int64
	pending    chan<- inflight // closed when run returns
	// end is set when the stream must end after the batches before are
	// answered: the partition's bundle moved away (the status names the
	// owner for the client to go to), or it is unavailable for now. The
	// client sends the rest again, there or here. Read after pending is
	// closed.
	end error
}

func (r *receiver) run(ctx context.Context) error {
	defer close(r.pending)
	var last *broker.Future
	for {
		req, err := r.stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		send := req.GetSend()
		if send == nil {
			return status.Error(codes.InvalidArgument, "native: only send requests may follow open")
		}
		if err := failedBefore(last); err != nil {
			// The batch before failed: none after it may be stored
			// before it is sent again, or the partition's order breaks.
			return nil // sendReceipts ends the stream when it gets there
		}
		in := inflight{seq: send.GetSequenceId(), count: int32(len(send.GetMessages()))}
		in.future, in.err = r.s.b.PublishSequencedAsync(ctx, r.name, r.partition, r.producerID, in.seq, toRecords(send.GetMessages()))
		switch {
		case errors.Is(in.err, broker.ErrNotOwner) || errmap.GRPCCode(in.err) == codes.Unavailable:
			r.end = in.err
			return nil
		case broker.RefusedFull(in.err):
			r.end = status.Errorf(codes.Unavailable, "native: batch %d refused, send it again: %v", in.seq, in.err)
			return nil
		}
		if in.err == nil {
			last = &in.future
		}
		select {
		case r.pending <- in:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// sendAgain reports whether a batch that failed with err is to be sent
// again, with the ones after it, rather than answered with err: its
// outcome is unknown (the partition failed), or it was refused for want of
// space (nothing stored, and the producer's next batches may not be
// stored before it).
func sendAgain(err error) bool {
	return errors.Is(err, broker.ErrPartitionFailed) || broker.RefusedFull(err)
}

// failedBefore returns the error of a batch already completed with an
// error that makes the producer send it again (sendAgain).
func failedBefore(f *broker.Future) error {
	if f == nil {
		return nil
	}
	select {
	case <-f.Done():
		if _, err := f.Result(); sendAgain(err) {
			return err
		}
	default:
	}
	return nil
}

// sendReceipts answers the producer's batches in the order they came. A
// batch whose append failed with an unknown outcome (the partition failed)
// or for want of space ends the stream (Unavailable) instead: it may or
// may not have been stored, or was not, and the client sends it and the
// ones after it again, which the producer's sequence numbers make safe.
func (s *Server) sendReceipts(ctx context.Context, stream nativepb.Magnetar_ProduceServer, pending <-chan inflight) error {
	for in := range pending {
		err := in.err
		base := int64(-1)
		if err == nil {
			base, err = in.future.Wait(ctx)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if sendAgain(err) {
				return status.Errorf(codes.Unavailable, "native: storing batch %d failed, send it again: %v", in.seq, err)
			}
		}
		resp := &nativepb.ProduceResponse{}
		if err != nil && !errors.Is(err, broker.ErrDuplicateSequence) {
			resp.Kind = &nativepb.ProduceResponse_Error{Error: &nativepb.SendError{
				SequenceId: in.seq, Code: int32(errmap.GRPCCode(err)), Message: err.Error(),
			}}
		} else {
			// A duplicate too old to be remembered was stored before, at
			// an offset no longer known (base -1).
			resp.Kind = &nativepb.ProduceResponse_Receipt{Receipt: &nativepb.SendReceipt{
				SequenceId: in.seq, BaseOffset: base, Count: in.count,
			}}
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	return nil
}

func toRecords(msgs []*nativepb.Message) []record.Record {
	now := time.Now().UnixMilli()
	recs := make([]record.Record, len(msgs))
	for i, m := range msgs {
		r := &recs[i]
		r.Key, r.Value, r.Timestamp = m.GetKey(), m.GetValue(), m.GetEventTimeMs()
		if r.Timestamp == 0 {
			r.Timestamp = now
		}
		hs := m.GetHeaders()
		at := m.GetDeliverAtMs()
		if len(hs) > 0 || at > 0 {
			r.Headers = make([]record.Header, len(hs), len(hs)+1)
			for j, h := range hs {
				r.Headers[j] = record.Header{Key: h.GetKey(), Value: h.GetValue()}
			}
			if at > 0 {
				r.Headers = append(r.Headers, record.Header{Key: broker.DeliverAtHeader, Value: strconv.AppendInt(nil, at, 10)})
			}
		}
	}
	return recs
}

// Consume implements nativepb.MagnetarServer.
func (s *Server) Consume(stream nativepb.Magnetar_ConsumeServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	sub := first.GetSubscribe()
	if sub == nil {
		return status.Error(codes.InvalidArgument, "native: the first consume request must be subscribe")
	}
	opts, err := s.subscribeOptions(sub)
	if err != nil {
		return err
	}
	name := opts.Topic
	if err := s.b.AuthorizeTopic(ctx, name, broker.ActionConsume); err != nil {
		return errmap.GRPCStatus(err)
	}
	c, err := s.b.Subscribe(ctx, opts)
	if err != nil {
		return s.status(ctx, err)
	}
	defer c.Close()
	if err := stream.Send(&nativepb.ConsumeResponse{Kind: &nativepb.ConsumeResponse_Subscribed{
		Subscribed: &nativepb.Subscribed{Topic: name.String(), Partition: sub.GetPartition(), StartOffset: c.StartOffset()},
	}}); err != nil {
		return err
	}

	// Dispatch and the request loop run side by side. When dispatch ends
	// (the consumer was closed: a seek, a deleted topic, an unloaded
	// partition) the handler returns at once, which ends the stream and
	// with it the request loop's Recv (s.streams waits for that loop at
	// shutdown, as for Produce's receiver); when the request loop ends
	// first, dispatch is stopped and awaited, as it sends on the stream.
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dispatched := make(chan error, 1)
	go func() { dispatched <- dispatch(dctx, stream, c) }() // awaited below, whichever ends first
	requests := make(chan error, 1)
	s.streams.Go(func() { requests <- consumeRequests(ctx, stream, c) })
	select {
	case err = <-dispatched:
	case err = <-requests:
		cancel()
		if derr := <-dispatched; err == nil || errors.Is(err, io.EOF) {
			err = derr
		}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) && ctx.Err() == nil {
		return nil
	}
	return errmap.GRPCStatus(err)
}

// consumeRequests applies a consumer's requests until the stream ends;
// io.EOF means the client closed its side.
func consumeRequests(ctx context.Context, stream nativepb.Magnetar_ConsumeServer, c *broker.Consumer) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		switch k := req.GetKind().(type) {
		case *nativepb.ConsumeRequest_Flow:
			c.Flow(k.Flow.GetPermits())
		case *nativepb.ConsumeRequest_Ack:
			if err := ack(c, k.Ack); err != nil {
				return err
			}
		case *nativepb.ConsumeRequest_Nack:
			if err := c.Nack(k.Nack.GetOffsets()); err != nil {
				return err
			}
		case *nativepb.ConsumeRequest_Seek:
			pos := broker.Position{Offset: k.Seek.GetOffset()}
			if _, ok := k.Seek.GetTarget().(*nativepb.Seek_TimeMs); ok {
				pos = broker.Position{Time: time.UnixMilli(k.Seek.GetTimeMs())}
			}
			if _, err := c.Seek(ctx, pos); err != nil {
				return err
			}
		default:
			return status.Error(codes.InvalidArgument, "native: only flow, ack, nack and seek may follow subscribe")
		}
	}
}

// dispatch sends the consumer's messages as its permits allow.
func dispatch(ctx context.Context, stream nativepb.Magnetar_ConsumeServer, c *broker.Consumer) error {
	for {
		ds, err := c.Next(ctx)
		if err != nil {
			return err
		}
		batch := &nativepb.MessageBatch{Messages: make([]*nativepb.ReceivedMessage, len(ds))}
		for i, d := range ds {
			m := &nativepb.Message{Key: d.Record.Key, Value: d.Record.Value, EventTimeMs: d.Record.Timestamp}
			if len(d.Record.Headers) > 0 {
				m.Headers = make([]*nativepb.Header, 0, len(d.Record.Headers))
				for _, h := range d.Record.Headers {
					if h.Key == broker.DeliverAtHeader {
						m.DeliverAtMs = broker.DeliverAt(d.Record)
						continue
					}
					m.Headers = append(m.Headers, &nativepb.Header{Key: h.Key, Value: h.Value})
				}
			}
			batch.Messages[i] = &nativepb.ReceivedMessage{Offset: d.Offset, Message: m, PublishTimeMs: d.Record.Timestamp,
				RedeliveryCount: d.RedeliveryCount}
		}
		if err := stream.Send(&nativepb.ConsumeResponse{Kind: &nativepb.ConsumeResponse_Messages{Messages: batch}}); err != nil {
			return err
		}
	}
}

var subscriptionTypes = map[nativepb.SubscriptionType]broker.SubscriptionType{
	nativepb.SubscriptionType_SUBSCRIPTION_TYPE_UNSPECIFIED: broker.Exclusive,
	nativepb.SubscriptionType_EXCLUSIVE:                     broker.Exclusive,
	nativepb.SubscriptionType_SHARED:                        broker.Shared,
	nativepb.SubscriptionType_FAILOVER:                      broker.Failover,
	nativepb.SubscriptionType_KEY_SHARED:                    broker.KeyShared,
}

// subscribeOptions translates a subscribe request.
func (s *Server) subscribeOptions(sub *nativepb.Subscribe) (broker.SubscribeOptions, error) {
	typ, ok := subscriptionTypes[sub.GetType()]
	if !ok {
		return broker.SubscribeOptions{}, status.Errorf(codes.InvalidArgument, "native: unknown subscription type %d", sub.GetType())
	}
	name, err := s.b.ParseTopic(sub.GetTopic())
	if err != nil {
		return broker.SubscribeOptions{}, errmap.GRPCStatus(err)
	}
	opts := broker.SubscribeOptions{
		Topic: name, Partition: sub.GetPartition(), Subscription: sub.GetSubscription(), Type: typ,
		ConsumerName: sub.GetConsumerName(), NonDurable: sub.GetNonDurable(),
		AckTimeout:   time.Duration(sub.GetAckTimeoutMs()) * time.Millisecond,
		NackDelay:    time.Duration(sub.GetNackRedeliveryDelayMs()) * time.Millisecond,
		NackMaxDelay: time.Duration(sub.GetNackRedeliveryMaxDelayMs()) * time.Millisecond,
	}
	if sub.GetInitialPosition() == nativepb.InitialPosition_EARLIEST {
		opts.Initial = broker.Earliest
	}
	switch st := sub.GetStart().(type) {
	case *nativepb.Subscribe_StartOffset:
		opts.Start = &broker.Position{Offset: st.StartOffset}
	case *nativepb.Subscribe_StartTimeMs:
		opts.Start = &broker.Position{Time: time.UnixMilli(st.StartTimeMs)}
	}
	return opts, nil
}

// ack applies an acknowledgement request.
func ack(c *broker.Consumer, a *nativepb.Ack) error {
	offs := a.GetOffsets()
	if !a.GetCumulative() {
		c.Ack(offs)
		return nil
	}
	if len(offs) == 0 {
		return nil
	}
	return c.AckCumulative(slices.Max(offs))
}

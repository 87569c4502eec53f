package bookie_test

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookiepb"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
)

// grpcMethods decode b as one method's request and call the handler.
var grpcMethods = []func(s *bookie.GRPCServer, b []byte) (proto.Message, error, bool){
	func(s *bookie.GRPCServer, b []byte) (proto.Message, error, bool) {
		var req bookiepb.CreateSegmentRequest
		if proto.Unmarshal(b, &req) != nil {
			return nil, nil, false
		}
		resp, err := s.CreateSegment(ctx, &req)
		return resp, err, true
	},
	func(s *bookie.GRPCServer, b []byte) (proto.Message, error, bool) {
		var req bookiepb.AppendRequest
		if proto.Unmarshal(b, &req) != nil {
			return nil, nil, false
		}
		resp, err := s.Append(ctx, &req)
		return resp, err, true
	},
	func(s *bookie.GRPCServer, b []byte) (proto.Message, error, bool) {
		var req bookiepb.SealRequest
		if proto.Unmarshal(b, &req) != nil {
			return nil, nil, false
		}
		resp, err := s.Seal(ctx, &req)
		return resp, err, true
	},
	func(s *bookie.GRPCServer, b []byte) (proto.Message, error, bool) {
		var req bookiepb.ReadRequest
		if proto.Unmarshal(b, &req) != nil {
			return nil, nil, false
		}
		resp, err := s.Read(ctx, &req)
		return resp, err, true
	},
	func(s *bookie.GRPCServer, b []byte) (proto.Message, error, bool) {
		var req bookiepb.InfoRequest
		if proto.Unmarshal(b, &req) != nil {
			return nil, nil, false
		}
		resp, err := s.Info(ctx, &req)
		return resp, err, true
	},
	func(s *bookie.GRPCServer, b []byte) (proto.Message, error, bool) {
		var req bookiepb.DeleteRequest
		if proto.Unmarshal(b, &req) != nil {
			return nil, nil, false
		}
		resp, err := s.Delete(ctx, &req)
		return resp, err, true
	},
	func(s *bookie.GRPCServer, b []byte) (proto.Message, error, bool) {
		var req bookiepb.ListRequest
		if proto.Unmarshal(b, &req) != nil {
			return nil, nil, false
		}
		resp, err := s.List(ctx, &req)
		return resp, err, true
	},
}

// FuzzGRPCServer decodes arbitrary bytes as each request of the bookie
// service and hands them to the server of a real shard (whose segment 1
// holds entries): a handler never panics, answers with a response or a
// clean status (a known code, never Unknown or Internal), and every status
// that stands for a bookie error carries the ErrorDetail naming it.
func FuzzGRPCServer(f *testing.F) {
	s := openShard(f, f.TempDir())
	f.Cleanup(func() { s.Close() })
	if err := s.CreateSegment(ctx, 1, 0, 1); err != nil {
		f.Fatal(err)
	}
	if _, err := s.Append(ctx, bookie.AppendRequest{Segment: 1, Epoch: 1, Entries: [][]byte{bookietest.BatchN(f, 0, 3)}}); err != nil {
		f.Fatal(err)
	}
	srv := bookie.NewGRPCServer(map[string]bookie.Client{"s1": s}, nil)

	seed := func(method int, m proto.Message) {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(method), b)
	}
	seed(0, &bookiepb.CreateSegmentRequest{Segment: 2, StartOffset: 100, Epoch: 1})
	seed(0, &bookiepb.CreateSegmentRequest{Segment: 3, StartOffset: -1, Epoch: 1})
	seed(1, &bookiepb.AppendRequest{Segment: 1, Epoch: 1, Entries: [][]byte{bookietest.BatchN(f, 3, 2)}})
	seed(1, &bookiepb.AppendRequest{Segment: 1, Epoch: 1, Entries: [][]byte{[]byte("not a batch")}})
	seed(1, &bookiepb.AppendRequest{Segment: 9, Epoch: 1, Entries: [][]byte{bookietest.BatchN(f, 0, 1)}})
	seed(2, &bookiepb.SealRequest{Segment: 4, Epoch: 2, StartOffset: 7})
	seed(3, &bookiepb.ReadRequest{Segment: 1, FromOffset: 1, MaxBytes: 1 << 62})
	seed(3, &bookiepb.ReadRequest{Segment: 1, FromOffset: -5, MaxBytes: -1})
	seed(4, &bookiepb.InfoRequest{Segment: 1})
	seed(5, &bookiepb.DeleteRequest{Segment: 5})
	seed(5, &bookiepb.DeleteRequest{Segment: 1, Shard: "elsewhere"})
	seed(6, &bookiepb.ListRequest{After: 0, Limit: -3})
	seed(6, &bookiepb.ListRequest{After: ^uint64(0), Limit: 1 << 30, FollowerRead: true})

	reasoned := map[codes.Code]bool{
		codes.NotFound: true, codes.AlreadyExists: true, codes.FailedPrecondition: true,
		codes.Aborted: true, codes.OutOfRange: true, codes.InvalidArgument: true,
		codes.DataLoss: true, codes.Unavailable: true,
	}
	f.Fuzz(func(t *testing.T, method uint8, b []byte) {
		call := grpcMethods[int(method)%len(grpcMethods)]
		resp, err, decoded := call(srv, b)
		if !decoded {
			return // gRPC's codec answers undecodable requests itself
		}
		if err == nil {
			if resp == nil {
				t.Fatal("no response and no error")
			}
			return
		}
		st, ok := status.FromError(err)
		if !ok {
			t.Fatalf("%T %v is not a status", err, err)
		}
		if !reasoned[st.Code()] {
			t.Fatalf("status code %v: %v", st.Code(), err)
		}
		var detail *bookiepb.ErrorDetail
		for _, d := range st.Details() {
			if d, ok := d.(*bookiepb.ErrorDetail); ok {
				detail = d
			}
		}
		if detail == nil || detail.GetReason() == bookiepb.ErrorReason_ERROR_REASON_UNSPECIFIED {
			t.Fatalf("status %v carries no error reason", err)
		}
		if _, err := s.Info(ctx, 1); err != nil && !errors.Is(err, bookie.ErrSegmentNotFound) {
			t.Fatalf("shard unusable after the call: %v", err)
		}
	})
}

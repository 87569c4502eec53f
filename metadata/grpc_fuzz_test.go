package metadata_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/magnetar-mq/magnetar/metadata"
	"github.com/magnetar-mq/magnetar/metadata/metadatapb"
)

// FuzzGRPCHandlers feeds arbitrary request bytes to the unary handlers of a
// real single-node service: whatever decodes must be answered with a
// response or a gRPC status, never a panic.
func FuzzGRPCHandlers(f *testing.F) {
	seeds := []proto.Message{
		&metadatapb.PutRequest{Key: "a", Value: []byte("v"), ExpectedVersion: 0},
		&metadatapb.GetRequest{Key: "a"},
		&metadatapb.RangeRequest{Prefix: "", Limit: 2},
		&metadatapb.DeleteRequest{Key: "a", ExpectedVersion: -1},
		&metadatapb.TxnRequest{Compares: []*metadatapb.Compare{{Key: "a", Target: 1, Op: 1}}, ThenOps: []*metadatapb.Op{{Type: 1, Key: "b", Value: []byte("x")}}},
		&metadatapb.GrantRequest{TtlMs: 1000},
		&metadatapb.KeepAliveRequest{Id: 1},
		&metadatapb.RevokeRequest{Id: 1},
	}
	for i, m := range seeds {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(byte(i), b)
	}
	svc := openService(f, f.TempDir(), 1000)
	srv := metadata.NewGRPCServer(svc)
	f.Fuzz(func(t *testing.T, method byte, b []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		switch method % 8 {
		case 0:
			var req metadatapb.PutRequest
			if proto.Unmarshal(b, &req) == nil {
				_, err = srv.Put(ctx, &req)
			}
		case 1:
			var req metadatapb.GetRequest
			if proto.Unmarshal(b, &req) == nil {
				_, err = srv.Get(ctx, &req)
			}
		case 2:
			var req metadatapb.RangeRequest
			if proto.Unmarshal(b, &req) == nil {
				_, err = srv.Range(ctx, &req)
			}
		case 3:
			var req metadatapb.DeleteRequest
			if proto.Unmarshal(b, &req) == nil {
				_, err = srv.Delete(ctx, &req)
			}
		case 4:
			var req metadatapb.TxnRequest
			if proto.Unmarshal(b, &req) == nil {
				_, err = srv.Txn(ctx, &req)
			}
		case 5:
			var req metadatapb.GrantRequest
			if proto.Unmarshal(b, &req) == nil {
				_, err = srv.Grant(ctx, &req)
			}
		case 6:
			var req metadatapb.KeepAliveRequest
			if proto.Unmarshal(b, &req) == nil {
				_, err = srv.KeepAlive(ctx, &req)
			}
		case 7:
			var req metadatapb.RevokeRequest
			if proto.Unmarshal(b, &req) == nil {
				_, err = srv.Revoke(ctx, &req)
			}
		}
		if _, ok := status.FromError(err); err != nil && !ok {
			t.Fatalf("method %d: error %v is not a gRPC status", method%8, err)
		}
	})
}

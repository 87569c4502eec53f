package metadata

import (
	"context"
	"errors"
	"time"

	"github.com/magnetar-mq/magnetar/metadata/metadatapb"
)

// The Txn and lease calls of the gRPC API: GRPCServer's handlers and
// Client's methods, beside the conversions between their Go and protobuf
// forms.

// Txn implements metadatapb.MetadataServer.
func (s *GRPCServer) Txn(ctx context.Context, req *metadatapb.TxnRequest) (*metadatapb.TxnResponse, error) {
	resp, err := s.svc.Txn(ctx, txnFromPB(req))
	if err != nil {
		return nil, s.status(err)
	}
	out := &metadatapb.TxnResponse{Succeeded: resp.Succeeded, Revision: resp.Revision, Results: make([]*metadatapb.OpResult, len(resp.Results))}
	for i, r := range resp.Results {
		out.Results[i] = &metadatapb.OpResult{Kv: kvToPB(r.KV), Deleted: r.Deleted}
	}
	return out, nil
}

// Grant implements metadatapb.MetadataServer.
func (s *GRPCServer) Grant(ctx context.Context, req *metadatapb.GrantRequest) (*metadatapb.GrantResponse, error) {
	id, err := s.svc.Grant(ctx, time.Duration(req.TtlMs)*time.Millisecond)
	if err != nil {
		return nil, s.status(err)
	}
	return &metadatapb.GrantResponse{Id: int64(id)}, nil
}

// KeepAlive implements metadatapb.MetadataServer.
func (s *GRPCServer) KeepAlive(ctx context.Context, req *metadatapb.KeepAliveRequest) (*metadatapb.KeepAliveResponse, error) {
	ttl, err := s.svc.KeepAlive(ctx, LeaseID(req.Id))
	if err != nil {
		return nil, s.status(err)
	}
	return &metadatapb.KeepAliveResponse{TtlMs: ttl.Milliseconds()}, nil
}

// Revoke implements metadatapb.MetadataServer.
func (s *GRPCServer) Revoke(ctx context.Context, req *metadatapb.RevokeRequest) (*metadatapb.RevokeResponse, error) {
	if err := s.svc.Revoke(ctx, LeaseID(req.Id)); err != nil {
		return nil, s.status(err)
	}
	return &metadatapb.RevokeResponse{}, nil
}

// status maps err through the service (so a raft "not leader" names the
// leader) and then to a gRPC status.
func (s *GRPCServer) status(err error) error { return toStatus(s.svc.mapRaftErr(err)) }

// Txn implements Store. A txn is not retried after an unknown outcome: it
// fails with ErrUnknownOutcome.
func (c *Client) Txn(ctx context.Context, req TxnRequest) (TxnResponse, error) {
	if err := req.Validate(); err != nil {
		return TxnResponse{}, err
	}
	preq := txnToPB(req)
	var resp *metadatapb.TxnResponse
	err := c.do(ctx, retryIfUnsent, func(ctx context.Context, _ string, mc metadatapb.MetadataClient) (err error) {
		resp, err = mc.Txn(ctx, preq)
		return err
	})
	if err != nil {
		return TxnResponse{}, err
	}
	out := TxnResponse{Succeeded: resp.Succeeded, Revision: resp.Revision, Results: make([]OpResult, len(resp.Results))}
	for i, r := range resp.Results {
		out.Results[i] = OpResult{KV: kvFromPB(r.Kv), Deleted: r.Deleted}
	}
	return out, nil
}

// Grant implements Store. It is retried after an unknown outcome: at worst
// a second lease is granted, and the unused one expires after its TTL.
func (c *Client) Grant(ctx context.Context, ttl time.Duration) (LeaseID, error) {
	if ttl < time.Millisecond {
		return 0, ErrInvalidTTL
	}
	ms := int64((ttl + time.Millisecond - 1) / time.Millisecond)
	var resp *metadatapb.GrantResponse
	err := c.do(ctx, retryAlways, func(ctx context.Context, _ string, mc metadatapb.MetadataClient) (err error) {
		resp, err = mc.Grant(ctx, &metadatapb.GrantRequest{TtlMs: ms})
		return err
	})
	if err != nil {
		return 0, err
	}
	return LeaseID(resp.Id), nil
}

// KeepAlive implements Store; it is idempotent and retried.
func (c *Client) KeepAlive(ctx context.Context, id LeaseID) (time.Duration, error) {
	var resp *metadatapb.KeepAliveResponse
	err := c.do(ctx, retryAlways, func(ctx context.Context, _ string, mc metadatapb.MetadataClient) (err error) {
		resp, err = mc.KeepAlive(ctx, &metadatapb.KeepAliveRequest{Id: int64(id)})
		return err
	})
	if err != nil {
		return 0, err
	}
	return time.Duration(resp.TtlMs) * time.Millisecond, nil
}

// Revoke implements Store. It is retried after an unknown outcome; if an
// earlier attempt may have revoked the lease, the ErrLeaseNotFound of the
// retry counts as success.
func (c *Client) Revoke(ctx context.Context, id LeaseID) error {
	uncertain := false
	err := c.do(ctx, retryAlways, func(ctx context.Context, _ string, mc metadatapb.MetadataClient) error {
		_, err := mc.Revoke(ctx, &metadatapb.RevokeRequest{Id: int64(id)})
		if e := fromStatus(err); e != nil && (ctx.Err() != nil || errors.Is(e, ErrUnknownOutcome) || errors.Is(e, ErrClosed) || isTransport(e)) {
			uncertain = true
		}
		return err
	})
	if uncertain && errors.Is(err, ErrLeaseNotFound) {
		return nil
	}
	return err
}

func txnToPB(req TxnRequest) *metadatapb.TxnRequest {
	out := &metadatapb.TxnRequest{Compares: make([]*metadatapb.Compare, len(req.Compares)), ThenOps: opsToPB(req.Then), ElseOps: opsToPB(req.Else)}
	for i, c := range req.Compares {
		out.Compares[i] = &metadatapb.Compare{Key: c.Key, Target: metadatapb.CompareTarget(c.Target), Op: metadatapb.CompareOp(c.Op), Version: c.Version, Value: c.Value}
	}
	return out
}

func opsToPB(ops []Op) []*metadatapb.Op {
	out := make([]*metadatapb.Op, len(ops))
	for i, o := range ops {
		out[i] = &metadatapb.Op{Type: metadatapb.OpType(o.Type), Key: o.Key, Value: o.Value, Lease: int64(o.Lease)}
	}
	return out
}

// txnFromPB converts a request; out-of-range enum values become invalid
// targets, operators or op types, which Txn rejects with ErrInvalidTxn.
func txnFromPB(req *metadatapb.TxnRequest) TxnRequest {
	out := TxnRequest{Compares: make([]Compare, len(req.Compares)), Then: opsFromPB(req.ThenOps), Else: opsFromPB(req.ElseOps)}
	for i, c := range req.Compares {
		out.Compares[i] = Compare{Key: c.Key, Target: CompareTarget(clampEnum(int32(c.Target))), Op: CompareOp(clampEnum(int32(c.Op))), Version: c.Version, Value: c.Value}
	}
	return out
}

func opsFromPB(ops []*metadatapb.Op) []Op {
	out := make([]Op, len(ops))
	for i, o := range ops {
		out[i] = Op{Type: OpType(clampEnum(int32(o.Type))), Key: o.Key, Value: o.Value, Lease: LeaseID(o.Lease)}
	}
	return out
}

// clampEnum maps enum numbers that do not fit the Go byte types to 0,
// which no Go constant uses.
func clampEnum(v int32) byte {
	if v < 0 || v > 255 {
		return 0
	}
	return byte(v)
}

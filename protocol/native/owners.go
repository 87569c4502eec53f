package native

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/internal/errmap"
	"github.com/magnetar-mq/magnetar/protocol/native/nativepb"
)

// OwnerTrailer is the trailer key that carries the owner's native address
// (empty while the partition's bundle moves) on a FAILED_PRECONDITION
// answered by a broker that does not own the partition.
const OwnerTrailer = "magnetar-owner"

// lookupOwners fills in the owner of every partition (assigning unowned
// bundles) and the live brokers.
func (s *Server) lookupOwners(ctx context.Context, name broker.TopicName, partitions int32, resp *nativepb.LookupResponse) error {
	byBundle := map[broker.Bundle]string{}
	resp.PartitionOwners = make([]string, partitions)
	for i := range partitions {
		bd, err := s.b.BundleOf(ctx, name, i)
		if err != nil {
			return err
		}
		addr, ok := byBundle[bd]
		if !ok {
			owner, err := s.b.Owner(ctx, name, i)
			if err != nil {
				return err
			}
			addr = owner.NativeAddr
			if owner.Self {
				addr = s.advertised
			}
			byBundle[bd] = addr
		}
		resp.PartitionOwners[i] = addr
	}
	if partitions > 0 {
		resp.BrokerAddress = resp.PartitionOwners[0]
	}
	live, err := s.b.LiveBrokers(ctx)
	if err != nil {
		return err
	}
	for _, l := range live {
		if l.NativeAddr != "" {
			resp.Brokers = append(resp.Brokers, l.NativeAddr)
		}
	}
	return nil
}

// status converts err to a gRPC status; a NotOwnerError becomes
// FAILED_PRECONDITION with the owner's address in the OwnerTrailer, which
// the client follows.
func (s *Server) status(ctx context.Context, err error) error {
	var noe *broker.NotOwnerError
	if !errors.As(err, &noe) {
		return errmap.GRPCStatus(err)
	}
	if serr := grpc.SetTrailer(ctx, metadata.Pairs(OwnerTrailer, noe.Owner.NativeAddr)); serr != nil {
		s.log.Debug("setting the owner trailer", "err", serr)
	}
	return status.Error(codes.FailedPrecondition, err.Error())
}

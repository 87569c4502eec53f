package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerID, versions 0-4 (2 and later are flexible), for idempotent
// producers only: a transactional ID is refused with INVALID_REQUEST, as
// transactions are not supported. A new producer gets a cluster-unique ID
// (from a durable counter in the metadata store) and epoch 0. A producer
// that presents its ID and epoch (version 3 and later, KIP-360) gets a new
// ID too, as Kafka answers idempotent producers: bumping the presented
// epoch would let any client fence another producer by naming its ID.
// Sequence numbers are checked per partition by the partition's owner.

func (c *conn) handleInitProducerID(ctx context.Context, req *kmsg.InitProducerIDRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	id, err := c.s.b.NewProducerID(ctx)
	if err != nil {
		resp.ErrorCode = kafkaCode(err)
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp
}

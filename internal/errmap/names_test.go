package errmap

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"google.golang.org/grpc/codes"

	"github.com/magnetar-mq/magnetar/broker"
)

// A name the broker refuses is the client's mistake: INVALID_ARGUMENT, 400,
// and over Kafka (where the only such name is a group ID) INVALID_GROUP_ID.
func TestAnInvalidNameIsAnInvalidArgument(t *testing.T) {
	err := fmt.Errorf("%w: subscription \"a/b\" contains '/' at byte 1", broker.ErrInvalidName)
	if got := GRPCCode(err); got != codes.InvalidArgument {
		t.Errorf("gRPC code %v, want InvalidArgument", got)
	}
	if got := HTTPStatus(err); got != http.StatusBadRequest {
		t.Errorf("HTTP status %d, want 400", got)
	}
	if got := KafkaCode(err); got != kerr.InvalidGroupID.Code {
		t.Errorf("Kafka code %d, want INVALID_GROUP_ID", got)
	}
}

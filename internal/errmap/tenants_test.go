package errmap

import (
	"fmt"
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/magnetar-mq/magnetar/broker"
)

func TestTenantAndNamespaceErrorsMapToTheirCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		grpc codes.Code
		http int
	}{
		{broker.ErrTenantNotFound, codes.NotFound, http.StatusNotFound},
		{broker.ErrNamespaceNotFound, codes.NotFound, http.StatusNotFound},
		{broker.ErrTenantExists, codes.AlreadyExists, http.StatusConflict},
		{broker.ErrNamespaceExists, codes.AlreadyExists, http.StatusConflict},
		{broker.ErrNotEmpty, codes.FailedPrecondition, http.StatusConflict},
		{broker.ErrTooManyTopics, codes.ResourceExhausted, http.StatusConflict},
	} {
		err := fmt.Errorf("wrapped: %w", tc.err)
		if got := GRPCCode(err); got != tc.grpc {
			t.Errorf("%v: gRPC %v, want %v", tc.err, got, tc.grpc)
		}
		if got := HTTPStatus(err); got != tc.http {
			t.Errorf("%v: HTTP %d, want %d", tc.err, got, tc.http)
		}
	}
}

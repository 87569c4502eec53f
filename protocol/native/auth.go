package native

import (
	"context"
	"crypto/tls"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/magnetar-mq/magnetar/internal/auth"
)

// AuthOptions are the gRPC server options that authenticate every call
// and stream with a as its headers arrive, before a byte of its messages
// is read (an unauthenticated client cannot make the server read a
// message): the principal (a bearer token in the "authorization"
// metadata, or the verified client certificate of a TLS connection) goes
// into the call's context, where the broker's authorization reads it. A
// call that fails is answered UNAUTHENTICATED and never reaches the
// service.
func AuthOptions(a *auth.Authenticator) []grpc.ServerOption {
	return []grpc.ServerOption{grpc.InTapHandle(func(ctx context.Context, info *tap.Info) (context.Context, error) {
		var bearer string
		if v := info.Header.Get("authorization"); len(v) > 0 {
			bearer = v[0]
		}
		var cs *tls.ConnectionState
		if p, ok := peer.FromContext(ctx); ok {
			if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
				cs = &ti.State
			}
		}
		p, err := a.Authenticate(bearer, cs)
		if err != nil {
			return nil, status.Error(codes.Unauthenticated, err.Error())
		}
		return auth.NewContext(ctx, p), nil
	})}
}

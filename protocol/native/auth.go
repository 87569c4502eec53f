package native

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/internal/auth"
)

// AuthOptions are the gRPC server options that authenticate every call
// and stream with a before the service sees it: the principal (a bearer
// token in the "authorization" metadata, or the verified client
// certificate of a TLS connection) goes into the call's context, where the
// broker's authorization reads it. A call that fails is answered
// UNAUTHENTICATED and never reaches the service.
func AuthOptions(a *auth.Authenticator) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			ctx, err := authenticate(ctx, a)
			if err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			ctx, err := authenticate(ss.Context(), a)
			if err != nil {
				return err
			}
			return h(srv, &principalStream{ServerStream: ss, ctx: ctx})
		}),
	}
}

func authenticate(ctx context.Context, a *auth.Authenticator) (context.Context, error) {
	var bearer string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			bearer = v[0]
		}
	}
	var cs *credentials.TLSInfo
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			cs = &ti
		}
	}
	var p auth.Principal
	var err error
	if cs != nil {
		p, err = a.Authenticate(bearer, &cs.State)
	} else {
		p, err = a.Authenticate(bearer, nil)
	}
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	return auth.NewContext(ctx, p), nil
}

// principalStream is a server stream whose context carries the principal.
type principalStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *principalStream) Context() context.Context { return s.ctx }

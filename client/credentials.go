package client

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Authentication: what the client presents to brokers.
//
// A token (Options.Token or TokenSource) goes with every call and stream
// as the metadata "authorization: Bearer <token>", through gRPC's per-call
// credentials, whether the connection is TLS or plaintext (gRPC refuses
// credentials that require transport security on a plaintext connection;
// these do not, so that development setups work without certificates).
// TLS (Options.TLS) secures the connections and may carry a client
// certificate.

// AuthorizationHeader is the metadata key and HTTP header that carry a
// bearer token.
const AuthorizationHeader = "authorization"

// securityOptions are the dial options of opts' transport security and
// token.
func securityOptions(opts Options) ([]grpc.DialOption, error) {
	transport := insecure.NewCredentials()
	if opts.TLS != nil {
		transport = credentials.NewTLS(opts.TLS) // clones it
	}
	dial := []grpc.DialOption{grpc.WithTransportCredentials(transport)}
	source, err := tokenSource(opts.Token, opts.TokenSource)
	if err != nil {
		return nil, err
	}
	if source != nil {
		dial = append(dial, grpc.WithPerRPCCredentials(bearerToken{source}))
	}
	return dial, nil
}

// tokenSource is the one source of a Token or a TokenSource, nil for
// neither.
func tokenSource(token string, source func(context.Context) (string, error)) (func(context.Context) (string, error), error) {
	switch {
	case token != "" && source != nil:
		return nil, errors.New("client: set Token or TokenSource, not both")
	case token != "":
		if err := checkToken(token); err != nil {
			return nil, err
		}
		return func(context.Context) (string, error) { return token, nil }, nil
	}
	return source, nil
}

// checkToken admits a token a header can carry: printable ASCII without
// spaces (a JWT is base64url and dots). The error never quotes the token.
func checkToken(token string) error {
	if token == "" {
		return errors.New("client: the token is empty")
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("client: the token has a byte 0x%02x at %d that a header cannot carry", c, i)
		}
	}
	return nil
}

// bearerToken is the gRPC per-call credentials of a token.
type bearerToken struct {
	source func(context.Context) (string, error)
}

func (b bearerToken) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	// A status error keeps its code: Unauthenticated, not the Unavailable
	// gRPC gives other errors, which the client would retry.
	tok, err := b.source(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Unauthenticated, "client: token source: %v", err)
	}
	if err := checkToken(tok); err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	return map[string]string{AuthorizationHeader: "Bearer " + tok}, nil
}

// RequireTransportSecurity is false: tokens may go over plaintext
// connections (see Options.Token).
func (bearerToken) RequireTransportSecurity() bool { return false }

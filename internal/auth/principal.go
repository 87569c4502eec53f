package auth

import "context"

// Principal is who sent a request: its role, and how it proved it.
type Principal struct {
	// Role is the identity permissions are granted to; "" is anonymous.
	Role string
	// Method names how the role was established: "token", "tls",
	// "sasl/PLAIN", "sasl/SCRAM-SHA-256", ... ("" for anonymous).
	Method string
}

// Anonymous reports whether p carries no identity.
func (p Principal) Anonymous() bool { return p.Role == "" }

type principalKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal ctx carries, and false when it
// carries none (a request no listener authenticated: an in-process call).
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Package adminapi holds JSON documents of the admin REST API that the
// server (broker/admin) writes and the client (client.Admin) reads, so
// both speak one definition.
package adminapi

// Permissions are the grants on a namespace or a topic: role -> actions
// (produce, consume, admin).
type Permissions map[string][]string

// GrantRequest is the body of a grant: the actions the role gets, which
// replace what it had.
type GrantRequest struct {
	Actions []string `json:"actions"`
}

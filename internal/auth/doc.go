// Package auth is Magnetar's one identity model: every listener (native
// gRPC, admin REST, Kafka, MQTT) turns what a client presents (a JWT
// bearer token, a client certificate, a SASL login) into a role, the
// string that authorization grants permissions to, as Pulsar does.
//
// A token is a JWT signed with HS256 (a shared secret key) or RS256/ES256
// (a private key, verified with its public key); its role is the "sub"
// claim, and "exp" and "nbf" are honoured. A client certificate's role is
// its subject's common name. Which listener takes which is the listener's
// configuration; this package only verifies and names.
//
// The role travels with a request in its context (NewContext, FromContext):
// the broker's authorization reads it there, whatever the protocol. A
// context without one is anonymous, which a server with authentication
// enabled never lets through.
package auth

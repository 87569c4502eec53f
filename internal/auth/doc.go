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
// Tokens are verified by a Verifier built from a TokenConfig. It accepts
// only the algorithms of its key's type: HS256, HS384 and HS512 with a
// secret key; RS256, RS384 and RS512 with an RSA public key (2048 bits or
// more); with an ECDSA public key, the one algorithm of its curve (ES256
// for P-256, ES384, ES512). Never "none", and never HMAC keyed with a
// public key (the algorithm confusion attack). "exp" and "nbf" are honoured
// with a leeway (token-clock-skew) but not required: Pulsar's tokens have
// no expiry by default. "aud" and "iss" are checked when configured. A
// token longer than token-max-bytes is refused before it is decoded, and
// an error names why a token was refused without quoting it.
//
// Key files. A secret key file holds the key's raw bytes, used exactly as
// they are (a trailing newline is part of the key), as Pulsar's file:
// URLs do; or "base64:" followed by the key in standard base64, as
// `magctl tokens create-secret-key --base64` writes it. A file written by
// `pulsar tokens create-secret-key --base64` holds bare base64: put
// "base64:" in front of it. Secrets are at least 32 bytes (RFC 7518). A
// public key file is PEM ("PUBLIC KEY", "RSA PUBLIC KEY", or a
// "CERTIFICATE" whose key is used), or the DER that `pulsar tokens
// create-key-pair` writes; a private key file (LoadSigningKey, to create
// tokens) is PEM PKCS#8, PKCS#1 or SEC1, or Pulsar's DER PKCS#8. A private
// key is refused where a public key is expected.
//
// Only a client certificate the TLS handshake verified names a role
// (TLSPrincipal); one merely presented proves nothing.
//
// The role travels with a request in its context (NewContext, FromContext):
// the broker's authorization reads it there, whatever the protocol. A
// context without one is anonymous, which a server with authentication
// enabled never lets through.
package auth

// Package kafka serves the Kafka wire protocol on top of a broker, so
// unmodified Kafka clients (franz-go, librdkafka/kcat, the Java client, ...)
// create topics, produce and consume on the same log as the native
// protocol.
//
// # Model
//
// A Server accepts TCP connections. Each request is a size-prefixed frame:
// a request header (API key, version, correlation ID, client ID, and tagged
// fields for flexible versions, KIP-482) and a body decoded with franz-go's
// kmsg, which is generated from Kafka's own message specs. Each API key is
// handled in its own file named after it (00_produce.go, 01_fetch.go, ...),
// whose comment says which versions it serves; versions.go lists what is
// advertised, and only that is advertised.
//
// Per connection, one goroutine reads and decodes requests and another
// writes responses, strictly in request order, as Kafka clients require.
// Most requests are answered by the reading goroutine before it reads the
// next one. Produce queues its batches on the partitions at once (so a
// connection's batches are stored in the order sent) and waits for
// durability in a goroutine of its own; Fetch long-polls in its own
// goroutine too. Any other request first waits for the produce requests
// before it, so it sees their effects, as it would on Kafka, which serves a
// connection one request at a time. A bounded queue of pending responses
// pushes back on a client that pipelines too much.
//
// # Topics and offsets
//
// A Kafka topic name maps to tenant/namespace/topic through
// Config.DefaultNamespace; topics of that namespace are the Kafka topics,
// whichever protocol created them. Offsets are the partition's own dense
// offsets and batches are stored as the producer encoded them (RecordBatch
// v2), so Fetch serves stored bytes without re-encoding. This broker is
// the leader of every partition for now.
//
// # Identity and authorization
//
// A connection's principal is its SASL login (PLAIN, SCRAM, or
// OAUTHBEARER with the server's JWTs, oauthbearer.go), else on the TLS
// listener its verified client certificate, else anonymous; every
// request's context carries it. The broker decides what it may do
// (broker/authz.go); authz.go maps each API onto those decisions as
// Kafka's authorizer does, in one switch with a case for every API served.
// The ACL APIs read and write the same grants (acls.go).
//
// # Errors
//
// Broker errors become Kafka error codes through internal/errmap. A
// malformed frame, an unknown API key or an unadvertised version closes
// the connection, as Kafka does, except ApiVersions: an unknown version of
// it is answered in the version 0 format with UNSUPPORTED_VERSION and the
// supported range (KIP-511).
package kafka

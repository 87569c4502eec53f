// Package native serves Magnetar's native protocol, the gRPC service
// defined in magnetar.proto (generated code in nativepb), on top of a
// broker.
//
// A producer is a bidirectional stream bound to one partition: after the
// open request, each send carries a batch of messages that the broker
// stores as one record batch; receipts come back in the order of the sends,
// each once its batch is durable. A consumer is a stream bound to one
// subscription on one partition: after subscribe, the client grants permits
// with flow requests and acknowledges offsets with ack requests; the server
// sends messages only within the permits granted.
//
// Errors are gRPC status codes, mapped from internal errors by
// internal/errmap. A batch the broker refuses is answered with a SendError
// and the stream stays open; a stream-level problem ends the stream.
package native

// Package raftmux lets several Raft groups of one process share one TCP
// port: a bookie process hosting replicas of many shards listens for Raft
// on one address, like Kafka brokers and CockroachDB stores do, instead of
// one port per shard.
//
// A Mux owns the listener. Each group gets a Layer (a
// raft.StreamLayer) by name; a connection dialed through a Layer starts
// with a small header naming the group, and the Mux hands each accepted
// connection to the Layer of the group its header names. A connection for
// a group the process does not host, or with a bad header, is closed.
//
// With WithTLS every connection is TLS: an accepted connection completes
// its handshake (the server config should require and verify a client
// certificate, as the cluster's does: internal/clustertls) before its
// header is read, within the same timeout, or it is closed; the header
// then travels inside the TLS stream.
//
// Header: the 4 bytes "MGRM", one byte of version (1), one byte of name
// length (1-255), the name.
package raftmux

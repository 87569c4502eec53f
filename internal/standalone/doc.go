// Package standalone composes every Magnetar role in one process: the
// metadata service, one bookie shard, a broker, the native gRPC server and
// the HTTP server (admin REST API, /metrics, /healthz, /readyz). It backs
// `magnetar standalone`, and lets tests, examples and benchmarks run a
// whole server in-process.
package standalone

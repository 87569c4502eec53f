// Command magnetar runs Magnetar's server roles.
//
//	magnetar standalone   every role in one process (development, tests)
//	magnetar bench        load generator: throughput and latency of a running server
//
// The cluster roles (meta, bookie, broker as separate processes) come with
// the segment-store and metadata-service issues.
package main

// Package bookietest helps test code that uses bookie.Client: Fake, an
// in-memory Client with the same semantics as a bookie shard, Batch, which
// builds entries, and RunConformance, the test suite every Client
// implementation must pass (the fake and bookie.Shard both run it).
package bookietest

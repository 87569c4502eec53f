// Package metadatatest holds test helpers for metadata.Store: Store, an
// in-memory implementation with the same semantics as the real service for
// other packages' unit tests, and RunConformance, the suite that every
// implementation (the in-memory one here, metadata.Service) must pass.
package metadatatest

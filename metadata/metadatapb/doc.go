// Package metadatapb holds the generated protobuf and gRPC code of the
// metadata service's API (metadata.proto). Regenerate with `make generate`.
package metadatapb

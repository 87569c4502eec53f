// Package tiered will hold the cold tier: object stores (S3 through
// minio-go, a local directory), the object format of offloaded segments,
// the offloader and the reader. Not implemented yet; sealed segments stay
// on the segment store until then.
package tiered

// Package storetest holds the conformance suite of tiered.ObjectStore:
// every implementation runs RunConformance in its tests, so that the
// offloader and the reader can rely on one contract whatever the store
// (a local directory, or S3 as a real server implements it).
package storetest

// Package bookiepb is the generated Go code of the bookie segment-store
// service (bookie.proto). Use it through package bookie: bookie.Dial returns
// a bookie.Client over this service, and bookie.NewGRPCServer serves any
// bookie.Client with it.
package bookiepb

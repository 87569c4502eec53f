// Package kafka will hold the Kafka wire-protocol adapter, one file per API
// key. Not implemented yet.
package kafka

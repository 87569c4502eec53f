// Package connlimit caps the connections a listener holds open: in all,
// and from one IP address. A connection over a cap is closed as soon as it
// is accepted, before a byte of it is read, so a client that opens
// connections without end costs the server one accept and one close each.
// The native and admin listeners use it; the Kafka listener has the same
// caps built into its server (protocol/kafka).
package connlimit

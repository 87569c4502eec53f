// Package nativepb is the generated Go code of the native protocol
// (../magnetar.proto). Any language can generate a client from that file;
// the Go client in package client is the reference.
package nativepb

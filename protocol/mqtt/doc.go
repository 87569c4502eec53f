// Package mqtt will hold the MQTT 3.1.1 and 5.0 adapter (sessions, routing,
// retained messages, wills). Not implemented yet.
package mqtt

// Package errmap is the one table that maps Magnetar's internal sentinel
// errors to what each protocol reports: gRPC status codes for the native
// protocol now, Kafka error codes and MQTT reason codes as those adapters
// arrive. Keeping one table keeps the protocols consistent.
package errmap

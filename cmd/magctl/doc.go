// Command magctl is Magnetar's admin and debugging CLI: it manages topics
// through the admin REST API and produces and consumes through the native
// protocol.
package main

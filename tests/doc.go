// Package tests holds Magnetar's integration tests: they build the
// magnetar and magctl binaries, start real `magnetar standalone` processes
// on loopback ports chosen by the kernel, and drive them with the Go
// client and the CLI, killing and restarting them. They are skipped under
// -short; `make test` runs them.
package tests

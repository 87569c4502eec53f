// Package client is the native Go client of Magnetar: producers,
// consumers and an admin client.
//
// A Client is one gRPC connection to a broker's native port (6650 by
// default). Producers and consumers are created from it and work on every
// partition of a topic:
//
//   - Producer.SendAsync queues a message and batches it with others for
//     the same partition (up to BatchingMaxMessages, BatchingMaxBytes or
//     BatchingMaxDelay); the callback runs once the broker has stored the
//     batch durably, with the message's ID (partition and offset). Send does
//     the same and waits. Messages with a key go to the key's partition, so
//     one key's messages keep their order; others are spread round-robin.
//     At most MaxPendingMessages are in flight; SendAsync blocks beyond.
//   - Consumer.Receive returns the messages of a subscription from every
//     partition; Ack acknowledges one. The consumer grants the broker
//     ReceiverQueueSize permits per partition and tops them up as messages
//     are received; acknowledgements are sent in batches every few
//     milliseconds. When a stream breaks, the consumer reconnects and the
//     broker redelivers what was not acknowledged (at-least-once).
//   - Admin manages topics over the admin REST API (8080 by default).
//
// Producers are idempotent: when a stream breaks (the broker died or shut
// down, the partition moved or failed) the producer sends the batches
// without receipts again, to the partition's owner, for up to 30 seconds,
// and the broker stores each batch once. Failures are reported, never
// hidden: a message still without a receipt then fails with
// ErrConnectionLost (it may have been stored).
package client

// Package chaos is Magnetar's chaos test, in the spirit of Jepsen: a
// cluster of real processes under a workload, a seeded schedule of faults,
// and a checker of what the clients were promised.
//
// # The cluster
//
// Three `magnetar meta` nodes, three `magnetar bookie` processes hosting
// two 3-replica shards (s1, s2) and two `magnetar broker` processes, all on
// 127.0.0.1, each process running as a uid of its own (so the firewall can
// tell its packets apart) in a process group of its own (so signals reach
// it alone), killed with the test process if that dies. One bookie, chosen
// by the seed, keeps its data on a tmpfs of its own. Bookies run with a
// smaller free-space reserve and log segments than the defaults so that
// tmpfs stays small (cluster.go).
//
// # The workload
//
// Three idempotent native producers (n1..n3) send to the 4 partitions of
// chaos-native, and an idempotent franz-go producer (k1) to the 4
// partitions of chaos-kafka, each about 200 messages a second. Every value
// starts with "<producer>:<sequence>:", so each message is identified. The
// history records, per message, whether its send was acknowledged (with
// the partition and offset the acknowledgement named), failed, or never
// answered, and per partition when each acknowledgement arrived. A native
// consumer (c-native, an Exclusive subscription acknowledging each message)
// and a Kafka group consumer (c-kafka) record what they receive
// (workload.go).
//
// # The faults
//
// One at a time, chosen by a seeded RNG: a quiet period of 3-6 s, then a
// fault aimed at the metadata leader, the leader of a shard, the owner of
// a partition or a random node (faults.go):
//
//   - kill: kill -9, and a restart on the same data directory 2-5 s later;
//   - pause: SIGSTOP for 5-15 s, then SIGCONT;
//   - partition: the node cut off from every other process for 5-15 s, by
//     iptables rules in a chain of the test's own (partition.go);
//   - disk-full: the tmpfs bookie's disk filled with a ballast file until
//     less than half its free-space reserve is left, for 5-15 s (disk.go).
//
// After each fault is undone, processes that exited by themselves are
// reported and restarted, and the test waits (at most a minute) until every
// process answers /readyz and the metadata service and both shards have a
// leader. The seed fixes the kinds, classes, durations and tie-breaks; the
// concrete targets depend on who leads at the time, and the fault log
// names them.
//
// # The checker
//
// After the fault phase everything is healed, every partition must
// acknowledge a send again, the producers stop (their sends get a minute to
// be answered) and the consumers get a minute to catch up. Then every
// partition of both topics is read from offset 0 by a Kafka fetch and by a
// native reader, which must agree, and (checker.go):
//
//   - every acknowledged message is stored, once, at the partition and
//     offset its acknowledgement named (lost, misplaced);
//   - no message is stored twice (duplicate), acknowledged or not: a failed
//     or unanswered send may be present or absent;
//   - offsets are dense from 0 (gap), and each producer's messages keep
//     their order within a partition (order);
//   - each consumer received every acknowledged message (not-consumed);
//   - the replicas of each shard, read one by one with follower reads, hold
//     the same segments with the same entry bytes (replicas.go);
//   - no process crashed or failed to restart, and the cluster recovered
//     after every fault.
//
// Any violation fails the test. The report (report.go) shows the seed, the
// fault log with times, the counts, the send errors, and the longest stall
// per fault type: the longest a partition went without an acknowledgement
// from the fault on, compared in the text (never asserted) with the bounds
// the design promises. On failure the nodes' logs are copied to a
// directory the test names.
//
// The test needs root (iptables, mount, setuid) and skips under -short.
// CHAOS_SEED and CHAOS_DURATION (the fault phase, default 3m) choose the
// run; `make chaos SEED=7 DURATION=10m` runs it.
package chaos

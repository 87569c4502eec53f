package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/client"
	"github.com/magnetar-mq/magnetar/internal/nettest"
)

// The cluster's shape and the flags that differ from the defaults.
const (
	metaNodes   = 3
	bookieNodes = 3
	brokerNodes = 2

	// The bookies keep a smaller free-space reserve and Raft log segments
	// than the defaults, so the full-disk bookie's tmpfs stays small. The
	// reserve still exceeds a log segment plus a memtable (docs/bookie.md).
	walSegmentSize = 8 << 20
	memtableSize   = 16 << 20
	minFreeBytes   = 64 << 20
	// diskSize is the tmpfs of the bookie whose disk fills up.
	diskSize = 512 << 20

	// brokerLeaseTTL bounds how long a dead broker's bundles stay with it.
	brokerLeaseTTL = 4 * time.Second
	// Small segments: partitions roll often and spread over both shards.
	segmentMaxBytes = 256 << 10
)

var shardIDs = []string{"s1", "s2"}

// cluster is the system under test: 3 meta nodes, 3 bookies hosting the
// 3-replica shards s1 and s2, and 2 brokers, each process with its own uid,
// all on 127.0.0.1.
type cluster struct {
	t       testing.TB
	bin     string
	base    string // every data directory and log is under it
	meta    []*node
	bookies []*node
	brokers []*node
	all     []*node
	diskBk  *node // the bookie whose data directory is a tmpfs
	spawn   *spawner
	net     *netFaults
	disk    *diskFault
}

// uidBase picks this run's uids: distinct from other test processes
// running at the same time (the partition rules match them).
func uidBase() int { return 200_000 + (os.Getpid()%50_000)*16 }

// newCluster lays out the cluster (addresses, directories, uids, the
// full-disk bookie's tmpfs, the firewall chain) without starting it.
// Everything it sets up is undone by t.Cleanup, in reverse order.
func newCluster(t testing.TB, bin string, diskBookie int) *cluster {
	t.Helper()
	removeStaleRuns(t, os.TempDir())
	base, err := os.MkdirTemp("", baseDirPrefix())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	must(t, os.Chmod(base, 0o755)) // the nodes' uids traverse it
	must(t, os.Mkdir(filepath.Join(base, "logs"), 0o755))

	c := &cluster{t: t, bin: bin, base: base, spawn: newSpawner()}
	addrs := nettest.FreeAddrs(t, 3*(metaNodes+bookieNodes+brokerNodes))
	next := func() string { a := addrs[0]; addrs = addrs[1:]; return a }
	uid := uidBase()
	mk := func(name, role string, uses ...string) *node {
		nd := &node{name: name, role: role, uid: uid, dataDir: filepath.Join(base, name), addrs: map[string]string{},
			logPath: filepath.Join(base, "logs", name+".log"), spawn: c.spawn}
		uid++
		for _, u := range uses {
			nd.addrs[u] = next()
		}
		c.all = append(c.all, nd)
		return nd
	}
	var metaPeers, metaGRPC, bookiePeers []string
	for i := range metaNodes {
		m := mk(fmt.Sprintf("m%d", i+1), "meta", "raft", "grpc", "http")
		c.meta = append(c.meta, m)
		metaPeers = append(metaPeers, m.name+"="+m.addrs["raft"]+"="+m.addrs["grpc"])
		metaGRPC = append(metaGRPC, m.addrs["grpc"])
	}
	for i := range bookieNodes {
		b := mk(fmt.Sprintf("b%d", i+1), "bookie", "raft", "grpc", "http")
		c.bookies = append(c.bookies, b)
		bookiePeers = append(bookiePeers, b.name+"="+b.addrs["raft"]+"="+b.addrs["grpc"])
	}
	for i := range brokerNodes {
		c.brokers = append(c.brokers, mk(fmt.Sprintf("br%d", i+1), "broker", "native", "http", "kafka"))
	}
	metaAddrs := strings.Join(metaGRPC, ",")
	for _, m := range c.meta {
		m.args = []string{"--node-id", m.name, "--data-dir", m.dataDir, "--raft-addr", m.addrs["raft"],
			"--grpc-addr", m.addrs["grpc"], "--http-addr", m.addrs["http"], "--peers", strings.Join(metaPeers, ",")}
	}
	for _, b := range c.bookies {
		b.args = []string{"--node-id", b.name, "--data-dir", b.dataDir, "--raft-addr", b.addrs["raft"],
			"--grpc-addr", b.addrs["grpc"], "--http-addr", b.addrs["http"], "--peers", strings.Join(bookiePeers, ","),
			"--shards", strings.Join(shardIDs, ","), "--meta-addrs", metaAddrs,
			"--wal-segment-size", fmt.Sprint(walSegmentSize), "--memtable-size", fmt.Sprint(memtableSize),
			"--min-free-bytes", fmt.Sprint(minFreeBytes)}
	}
	for i, br := range c.brokers {
		br.args = []string{"--meta-addrs", metaAddrs, "--broker.id", fmt.Sprint(i + 1),
			"--native-addr", br.addrs["native"], "--http-addr", br.addrs["http"], "--kafka.listen-addr", br.addrs["kafka"],
			"--broker.lease-ttl", brokerLeaseTTL.String(), "--broker.segment-max-bytes", fmt.Sprint(segmentMaxBytes)}
	}

	for _, nd := range c.all {
		must(t, os.Mkdir(nd.dataDir, 0o755))
	}
	c.diskBk = c.bookies[diskBookie]
	c.disk = newDiskFault(t, c.diskBk.dataDir, diskSize)
	for _, nd := range c.all {
		must(t, os.Chown(nd.dataDir, nd.uid, nd.uid))
	}
	c.net = newNetFaults(t)
	t.Cleanup(c.stop) // runs first: the processes go before the mount and the rules
	return c
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// startAll starts every node, meta first, and waits until each is ready.
func (c *cluster) startAll(ctx context.Context) error {
	for _, group := range [][]*node{c.meta, c.bookies, c.brokers} {
		for _, nd := range group {
			if err := nd.start(c.bin); err != nil {
				return err
			}
		}
		for _, nd := range group {
			if err := nd.waitReady(ctx); err != nil {
				return fmt.Errorf("%w\n%s", err, nd.interestingLog(0, 30))
			}
		}
	}
	return nil
}

// stop kills every process (resuming none: SIGKILL ends stopped ones too)
// and waits for them.
func (c *cluster) stop() {
	for _, nd := range c.all {
		nd.kill9()
	}
	c.spawn.stop()
}

// metaAddrs lists the brokers' native addresses, for clients.
func (c *cluster) nativeAddrs() string {
	var out []string
	for _, b := range c.brokers {
		out = append(out, b.addrs["native"])
	}
	return strings.Join(out, ",")
}

func (c *cluster) kafkaAddrs() []string {
	var out []string
	for _, b := range c.brokers {
		out = append(out, b.addrs["kafka"])
	}
	return out
}

// admin returns an admin client of a broker that is up and reachable.
func (c *cluster) admin() *client.Admin {
	for _, b := range c.brokers {
		if b.alive() && !b.paused() && !c.net.isolated(b) {
			return client.NewAdmin("http://" + b.addrs["http"])
		}
	}
	return client.NewAdmin("http://" + c.brokers[0].addrs["http"])
}

// metaLeader returns the meta node that says it leads, or nil.
func (c *cluster) metaLeader(ctx context.Context) *node {
	for _, m := range c.meta {
		if v, ok := m.metric(ctx, "magnetar_meta_is_leader"); ok && v == "1" {
			return m
		}
	}
	return nil
}

// shardLeader returns the bookie that says it leads shard, or nil.
func (c *cluster) shardLeader(ctx context.Context, shard string) *node {
	for _, b := range c.bookies {
		if v, ok := b.metric(ctx, `magnetar_bookie_is_leader{shard="`+shard+`"}`); ok && v == "1" {
			return b
		}
	}
	return nil
}

// brokerByNative returns the broker listening on addr, or nil.
func (c *cluster) brokerByNative(addr string) *node {
	i := slices.IndexFunc(c.brokers, func(b *node) bool { return b.addrs["native"] == addr })
	if i < 0 {
		return nil
	}
	return c.brokers[i]
}

// healthy reports whether every node runs, is not paused or cut off, and
// answers /readyz, and every shard has a leader that says so.
func (c *cluster) healthy(ctx context.Context) bool {
	for _, nd := range c.all {
		if !nd.alive() || nd.paused() || c.net.isolated(nd) || !nd.httpOK(ctx, "/readyz") {
			return false
		}
	}
	if c.metaLeader(ctx) == nil {
		return false
	}
	for _, s := range shardIDs {
		if c.shardLeader(ctx, s) == nil {
			return false
		}
	}
	return true
}

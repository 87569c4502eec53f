package chaos

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/client"
)

// Settings, from the environment (`make chaos SEED=... DURATION=...`).
const (
	defaultSeed     = 1
	defaultDuration = 3 * time.Minute
)

// bin is the magnetar binary the cluster runs: $CHAOS_MAGNETAR_BIN, or
// one TestMain builds.
var bin string

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" { // re-executed as another uid (partition_test.go)
		os.Exit(helperMain())
	}
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	os.Exit(runMain(m))
}

// runMain puts the magnetar binary where every uid can run it: a copy of
// $CHAOS_MAGNETAR_BIN, or one built from this tree.
func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "magnetar-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "magnetar")
	if given := os.Getenv("CHAOS_MAGNETAR_BIN"); given != "" {
		data, err := os.ReadFile(given)
		if err == nil {
			err = os.WriteFile(bin, data, 0o755)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "copying CHAOS_MAGNETAR_BIN: %v\n", err)
			return 1
		}
	} else {
		_, file, _, _ := runtime.Caller(0)
		build := exec.Command("go", "build", "-o", bin, "./cmd/magnetar")
		build.Dir = filepath.Join(filepath.Dir(file), "..", "..")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building magnetar: %v\n%s", err, out)
			return 1
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil { // the nodes run as other uids
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func settings(t *testing.T) (uint64, time.Duration) {
	seed, duration := uint64(defaultSeed), defaultDuration
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED=%q: %v", s, err)
		}
		seed = v
	}
	if s := os.Getenv("CHAOS_DURATION"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("CHAOS_DURATION=%q: %v", s, err)
		}
		duration = v
	}
	return seed, duration
}

// TestChaos runs the workload on a cluster of real processes while a
// seeded schedule of faults hits it, then heals everything and checks
// that no acknowledged message was lost, none was stored twice, offsets
// are dense, each producer's order is kept, the replicas of each shard
// agree, and no process crashed by itself. See doc.go.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test: starts a cluster of real processes for minutes (run without -short)")
	}
	if os.Geteuid() != 0 {
		t.Skip("chaos test: needs root (iptables, tmpfs mounts, processes as other uids); `make chaos` runs it with sudo")
	}
	seed, duration := settings(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x6d61676e6574))
	diskBookie := rng.IntN(bookieNodes)
	ctx, cancel := context.WithTimeout(context.Background(), duration+15*time.Minute)
	defer cancel()

	c := newCluster(t, bin, diskBookie)
	t.Cleanup(func() {
		if t.Failed() {
			keepLogs(t, c, seed)
		}
	})
	t.Logf("seed %d, fault phase %v; cluster under %s; %s's data directory is a %d MiB tmpfs", seed, duration, c.base, c.diskBk.name, diskSize>>20)
	sctx, scancel := context.WithTimeout(ctx, 90*time.Second)
	err := c.startAll(sctx)
	if err == nil {
		err = poll(sctx, 100*time.Millisecond, func() (bool, error) { return c.shardsPlaceable(sctx), nil })
	}
	scancel()
	if err != nil {
		t.Fatalf("starting the cluster: %v", err)
	}

	h := newHistory()
	w, err := startWorkload(ctx, c, h)
	if err != nil {
		t.Fatalf("starting the workload: %v", err)
	}
	closed := false
	defer func() {
		if !closed {
			w.close()
		}
	}()
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	err = poll(wctx, 100*time.Millisecond, func() (bool, error) { return h.everyPartitionAckedSince(time.Time{}), nil })
	wcancel()
	if err != nil {
		t.Fatalf("the workload did not get an acknowledgement on every partition: %v", err)
	}

	res := &result{seed: seed, duration: duration, began: time.Now()}
	nem := &nemesis{c: c, nc: w.nc, plans: &planner{rng: rng}, logf: t.Logf}
	nem.run(ctx, res.began.Add(duration))
	res.faults, res.faultsEnd = nem.faults, time.Now()
	for _, f := range res.faults {
		res.violations = append(res.violations, f.notes...)
	}

	// Heal everything, wait for the cluster, and require progress on every
	// partition before stopping the producers.
	res.violations = append(res.violations, c.healAll(ctx)...)
	healed := time.Now()
	pctx, pcancel := context.WithTimeout(ctx, recoveryTimeout)
	if poll(pctx, 100*time.Millisecond, func() (bool, error) { return h.everyPartitionAckedSince(healed), nil }) != nil {
		res.violations = append(res.violations, violation{"no-progress", fmt.Sprintf("not every partition acknowledged a send within %v of the final heal: %v",
			recoveryTimeout, h.partitionsSilentSince(healed))})
	}
	pcancel()
	w.stopProducing(time.Minute)
	cctx, ccancel := context.WithTimeout(ctx, time.Minute)
	w.waitConsumers(cctx)
	ccancel()
	w.close()
	closed = true
	for _, nd := range c.all {
		for _, cr := range nd.takeCrashes() {
			res.violations = append(res.violations, crashViolation(nd, cr))
		}
	}

	// Check.
	nc, err := client.New(client.Options{Address: c.nativeAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	res.topics = map[string]topicCounts{}
	for _, topic := range []string{nativeTopic, kafkaTopic} {
		tc, vs := checkTopic(ctx, c, nc, topic, h)
		res.topics[topic] = tc
		res.violations = append(res.violations, vs...)
	}
	vs, segs := checkReplicas(ctx, c, time.Minute)
	res.violations = append(res.violations, vs...)
	res.segments = segs
	h.sortAckTimes()
	h.mu.Lock()
	res.sendErrs, res.consErrs, res.clientLog = h.mu.errs, h.mu.consErrs, h.mu.clientLog
	h.mu.Unlock()
	t.Log(res.render(h))
	if len(res.violations) > 0 {
		t.Errorf("%d violations (seed %d); see the report above", len(res.violations), seed)
	}
}

// healAll undoes every fault, restarts whatever is down and waits for a
// healthy cluster.
func (c *cluster) healAll(ctx context.Context) []violation {
	var out []violation
	if err := c.net.heal(); err != nil {
		out = append(out, violation{"test-error", err.Error()})
	}
	if err := c.disk.free(); err != nil {
		out = append(out, violation{"test-error", err.Error()})
	}
	f := &fault{n: 0}
	n := &nemesis{c: c, logf: func(string, ...any) {}}
	for _, nd := range c.all {
		nd.resume()
	}
	n.recover(ctx, f)
	return append(out, f.notes...)
}

// shardsPlaceable reports whether the brokers can place segments: both
// shards registered with a leader and three replicas.
func (c *cluster) shardsPlaceable(ctx context.Context) bool {
	ss, err := c.admin().ListShards(ctx)
	if err != nil || len(ss) != len(shardIDs) {
		return false
	}
	for _, s := range ss {
		if s.Leader == "" || len(s.Replicas) != bookieNodes {
			return false
		}
	}
	return true
}

// keepLogs copies the nodes' logs somewhere that outlives the test.
func keepLogs(t *testing.T, c *cluster, seed uint64) {
	dir, err := os.MkdirTemp("", fmt.Sprintf("magnetar-chaos-logs-seed%d-", seed))
	if err != nil {
		return
	}
	for _, nd := range c.all {
		if data, err := os.ReadFile(nd.logPath); err == nil {
			_ = os.WriteFile(filepath.Join(dir, nd.name+".log"), data, 0o644)
		}
	}
	t.Logf("the nodes' logs are kept in %s", dir)
}

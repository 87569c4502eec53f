package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/magnetar-mq/magnetar/client"
)

// faultKind is what is done to the target.
type faultKind string

const (
	faultKill      faultKind = "kill"      // kill -9, restart on the same data directory after hold
	faultPause     faultKind = "pause"     // SIGSTOP, SIGCONT after hold
	faultPartition faultKind = "partition" // cut off from every other process for hold
	faultDiskFull  faultKind = "disk-full" // the tmpfs bookie's disk full for hold
)

// targetClass says how the target is chosen when the fault starts.
type targetClass string

const (
	targetMetaLeader  targetClass = "meta-leader"
	targetShardLeader targetClass = "shard-leader"
	targetOwner       targetClass = "partition-owner"
	targetRandom      targetClass = "random-node"
	targetDiskBookie  targetClass = "disk-bookie"
)

// fault is one entry of the fault log.
type fault struct {
	n      int
	kind   faultKind
	class  targetClass
	target *node
	detail string        // how the target was found, e.g. "leader of s1"
	hold   time.Duration // how long the fault lasts

	start     time.Time   // injected
	healed    time.Time   // undone (for a kill: the restarted process is ready)
	recovered time.Time   // the cluster was healthy again (zero: not within recoveryTimeout)
	notes     []violation // what went wrong meanwhile
}

func (f *fault) label() string { return string(f.kind) + " " + string(f.class) }

// recoveryTimeout bounds the wait for a healthy cluster after a fault.
const recoveryTimeout = 60 * time.Second

// plan is the seeded part of a fault: every random choice, drawn in the
// same order whatever the cluster looks like, so a seed always gives the
// same schedule of kinds, classes, durations and tie-breaks.
type plan struct {
	kind  faultKind
	class targetClass
	hold  time.Duration
	quiet time.Duration // before the fault
	pick  uint32        // chooses among candidates (shard, partition, node)
}

// planner draws the kinds and the target classes from shuffled bags, so
// every kind comes once in each round of four faults and every class once
// in each round of four faults that need one: a short run sees them all.
type planner struct {
	rng     *rand.Rand
	kinds   []faultKind
	classes []targetClass
}

func (pl *planner) next() plan {
	if len(pl.kinds) == 0 {
		pl.kinds = []faultKind{faultKill, faultPause, faultPartition, faultDiskFull}
		pl.rng.Shuffle(len(pl.kinds), func(i, j int) { pl.kinds[i], pl.kinds[j] = pl.kinds[j], pl.kinds[i] })
	}
	p := plan{kind: pl.kinds[0], quiet: 3*time.Second + durN(pl.rng, 3*time.Second), pick: pl.rng.Uint32()}
	pl.kinds = pl.kinds[1:]
	switch p.kind {
	case faultKill:
		p.hold = 2*time.Second + durN(pl.rng, 3*time.Second)
	default:
		p.hold = 5*time.Second + durN(pl.rng, 10*time.Second)
	}
	if p.kind == faultDiskFull {
		p.class = targetDiskBookie
		return p
	}
	if len(pl.classes) == 0 {
		pl.classes = []targetClass{targetMetaLeader, targetShardLeader, targetOwner, targetRandom}
		pl.rng.Shuffle(len(pl.classes), func(i, j int) { pl.classes[i], pl.classes[j] = pl.classes[j], pl.classes[i] })
	}
	p.class, pl.classes = pl.classes[0], pl.classes[1:]
	return p
}

// nemesis injects faults one at a time.
type nemesis struct {
	c      *cluster
	nc     *client.Client // for partition owners
	plans  *planner
	faults []*fault
	logf   func(format string, args ...any)
}

// run injects faults until the deadline: a quiet period, then a fault,
// held, undone, and a wait until the cluster is healthy again.
func (n *nemesis) run(ctx context.Context, until time.Time) {
	for {
		p := n.plans.next()
		if time.Now().Add(p.quiet + p.hold).After(until) {
			return
		}
		if !sleepCtx(ctx, p.quiet) {
			return
		}
		f := n.resolve(ctx, p)
		n.faults = append(n.faults, f)
		n.inject(ctx, f)
		if ctx.Err() != nil {
			return
		}
	}
}

// resolve picks the fault's target now.
func (n *nemesis) resolve(ctx context.Context, p plan) *fault {
	f := &fault{n: len(n.faults) + 1, kind: p.kind, class: p.class, hold: p.hold}
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	switch p.class {
	case targetDiskBookie:
		f.target, f.detail = n.c.diskBk, "the bookie on a tmpfs"
	case targetMetaLeader:
		if f.target = n.c.metaLeader(qctx); f.target != nil {
			f.detail = "metadata leader"
		}
	case targetShardLeader:
		shard := shardIDs[p.pick%uint32(len(shardIDs))]
		if f.target = n.c.shardLeader(qctx, shard); f.target != nil {
			f.detail = "leader of " + shard
		}
	case targetOwner:
		topic := []string{nativeTopic, kafkaTopic}[p.pick%2]
		part := int(p.pick/2) % topicPartitions
		if owners, err := n.nc.PartitionOwners(qctx, topic); err == nil && part < len(owners) {
			if f.target = n.c.brokerByNative(owners[part]); f.target != nil {
				f.detail = fmt.Sprintf("owner of %s/%d", topic, part)
			}
		}
	}
	if f.target == nil { // a random node, or the class had no answer now
		f.target = n.c.all[int(p.pick)%len(n.c.all)]
		if p.class != targetRandom {
			f.detail = "no " + string(p.class) + " found: random"
		} else {
			f.detail = "random"
		}
	}
	return f
}

// inject applies f, holds it, undoes it and waits for recovery.
func (n *nemesis) inject(ctx context.Context, f *fault) {
	nd := f.target
	f.start = time.Now()
	n.logf("fault %d: %s %s (%s) for %v", f.n, f.kind, nd.name, f.detail, f.hold.Round(time.Millisecond))
	switch f.kind {
	case faultKill:
		nd.kill9()
		sleepCtx(ctx, f.hold)
		n.restart(ctx, f, nd)
	case faultPause:
		nd.pause()
		sleepCtx(ctx, f.hold)
		nd.resume()
	case faultPartition:
		if err := n.c.net.isolate(nd); err != nil {
			f.notes = append(f.notes, violation{"test-error", err.Error()})
			break
		}
		if err := checkUnreachable(nd); err != nil {
			f.notes = append(f.notes, violation{"test-error", err.Error()})
		}
		sleepCtx(ctx, f.hold)
		if err := n.c.net.heal(); err != nil {
			f.notes = append(f.notes, violation{"test-error", err.Error()})
		}
	case faultDiskFull:
		if err := n.c.disk.fill(minFreeBytes / 2); err != nil {
			f.notes = append(f.notes, violation{"test-error", "filling the disk: " + err.Error()})
		}
		sleepCtx(ctx, f.hold)
		if err := n.c.disk.free(); err != nil {
			f.notes = append(f.notes, violation{"test-error", "freeing the disk: " + err.Error()})
		}
	}
	f.healed = time.Now()
	n.recover(ctx, f)
}

// restart starts nd again on its data directory; a process that does not
// come up is tried once more.
func (n *nemesis) restart(ctx context.Context, f *fault, nd *node) {
	for attempt := 1; attempt <= 2; attempt++ {
		if err := nd.start(n.c.bin); err != nil {
			f.notes = append(f.notes, violation{"test-error", err.Error()})
			return
		}
		rctx, cancel := context.WithTimeout(ctx, recoveryTimeout)
		err := nd.waitReady(rctx)
		cancel()
		if err == nil {
			return
		}
		r := nd.current()
		nd.kill9()
		f.notes = append(f.notes, violation{"restart-failed", fmt.Sprintf("fault %d: %s did not restart (attempt %d): %v; its log:\n%s",
			f.n, nd.name, attempt, err, indent(nd.interestingLog(r.logOffset, 20)))})
		nd.takeCrashes() // reported just above
	}
}

// recover restarts processes that exited without being killed, and waits
// until the cluster is healthy.
func (n *nemesis) recover(ctx context.Context, f *fault) {
	for _, nd := range n.c.all {
		for _, cr := range nd.takeCrashes() {
			f.notes = append(f.notes, crashViolation(nd, cr))
		}
		if !nd.alive() && nd.current() != nil {
			n.restart(ctx, f, nd)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, recoveryTimeout)
	defer cancel()
	if err := poll(rctx, 100*time.Millisecond, func() (bool, error) { return n.c.healthy(rctx), nil }); err == nil {
		f.recovered = time.Now()
		n.logf("fault %d: healed after %v, cluster healthy %v later", f.n, f.healed.Sub(f.start).Round(time.Millisecond),
			f.recovered.Sub(f.healed).Round(time.Millisecond))
		return
	}
	f.notes = append(f.notes, violation{"not-recovered", fmt.Sprintf("fault %d: the cluster was not healthy %v after the fault was undone: %s",
		f.n, recoveryTimeout, n.c.unhealthy(ctx))})
	n.logf("fault %d: cluster not healthy %v after it was undone", f.n, recoveryTimeout)
}

// unhealthy describes what keeps the cluster from being healthy.
func (c *cluster) unhealthy(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var out []string
	for _, nd := range c.all {
		switch {
		case !nd.alive():
			out = append(out, nd.name+" is down")
		case !nd.httpOK(ctx, "/readyz"):
			out = append(out, nd.name+" is not ready")
		}
	}
	if c.metaLeader(ctx) == nil {
		out = append(out, "no metadata leader")
	}
	for _, s := range shardIDs {
		if c.shardLeader(ctx, s) == nil {
			out = append(out, "no leader of "+s)
		}
	}
	return strings.Join(out, "; ")
}

// checkUnreachable verifies that the partition holds: a connection to the
// node's port from here does not open.
func checkUnreachable(nd *node) error {
	conn, err := net.DialTimeout("tcp", nd.addrs["http"], 300*time.Millisecond)
	if err == nil {
		conn.Close()
		return fmt.Errorf("%s still accepts connections while it is cut off", nd.name)
	}
	return nil
}

// sleepCtx sleeps for d (a fault's own timing) and reports whether ctx
// is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func indent(s string) string {
	if s == "" {
		return "    (nothing logged)"
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

func crashViolation(nd *node, cr crash) violation {
	return violation{"crash", fmt.Sprintf("%s (run %d) exited by itself at %s: %s; its log:\n%s",
		nd.name, cr.run, cr.at.Format("15:04:05.000"), cr.how, indent(cr.tail))}
}

// durN returns a duration in [0, d).
func durN(rng *rand.Rand, d time.Duration) time.Duration { return time.Duration(rng.Int64N(int64(d))) }

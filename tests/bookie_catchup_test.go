package tests

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
)

// A follower whose disk is wiped catches up by snapshot install, on real
// processes. The replicas snapshot every 64 log entries and keep only 16
// behind a snapshot (MAGNETAR_RAFT_* settings, inherited by the
// processes), so after a few hundred appends the leader's log no longer
// starts at index 1. A follower is killed, its data directory deleted and
// more is written without it; restarted empty, it cannot be served from
// the log: the leader streams it a snapshot (its log says "Installed
// remote snapshot"), and then it serves, as follower reads, every entry of
// every segment byte for byte as written, the sealed segment sealed and
// the deleted one absent.
func TestBookieWipedFollowerCatchesUpBySnapshot(t *testing.T) {
	skipIfShort(t)
	t.Setenv("MAGNETAR_RAFT_SNAPSHOT_THRESHOLD", "64")
	t.Setenv("MAGNETAR_RAFT_SNAPSHOT_INTERVAL", "50ms")
	t.Setenv("MAGNETAR_RAFT_TRAILING_LOGS", "16")
	t.Setenv("MAGNETAR_RAFT_LOG_LEVEL", "info") // to see the snapshot, compaction and install
	nodes, peers := startBookieShard(t, 3)
	c := dialShard(t, nodes)
	ctx := testContext(t, 90*time.Second)

	// written[seg] are the entries of seg as appended, in order.
	written := map[uint64][][]byte{}
	appendN := func(seg uint64, n int) {
		t.Helper()
		for range n {
			next := int64(len(written[seg]))
			// Values of varied sizes, naming their offset.
			e := bookietest.Batch(t, next, entryValue(next)+strings.Repeat("x", int(next%7)*300))
			got, err := c.Append(ctx, bookie.AppendRequest{Segment: seg, Epoch: 1, Entries: [][]byte{e}})
			if err != nil || got != next+1 {
				t.Fatalf("Append to segment %d at %d: next %d, %v", seg, next, got, err)
			}
			written[seg] = append(written[seg], e)
		}
	}
	for _, seg := range []uint64{1, 2, 3} {
		if err := c.CreateSegment(ctx, seg, 0, 1); err != nil {
			t.Fatal(err)
		}
	}
	appendN(1, 150)
	appendN(2, 60)
	appendN(3, 10)
	if err := c.DeleteSegment(ctx, 3); err != nil {
		t.Fatal(err)
	}
	delete(written, 3)
	if _, err := c.Seal(ctx, 2, 2, 0); err != nil {
		t.Fatal(err)
	}

	var leader, follower *bookieNode
	for _, b := range nodes {
		if b.grpcAddr == c.Leader() {
			leader = b
		} else if follower == nil {
			follower = b
		}
	}
	if leader == nil {
		t.Fatalf("the client's leader %q is none of the replicas", c.Leader())
	}
	waitFor(t, 20*time.Second, "the leader to snapshot and truncate its log", func() bool {
		return leader.logContains(`msg="compacting logs"`)
	})

	follower.kill()
	if err := os.RemoveAll(follower.dataDir); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed follower %s and deleted %s", follower.id, follower.dataDir)
	appendN(1, 100) // committed by the other two alone
	if err := c.CreateSegment(ctx, 4, 0, 1); err != nil {
		t.Fatal(err)
	}
	appendN(4, 20)

	follower.start(peers)
	follower.waitReady()
	fc, err := bookie.Dial(ctx, follower.grpcAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	fctx := bookie.WithFollowerReads(ctx)
	waitFor(t, 30*time.Second, "the wiped follower to apply the last append", func() bool {
		info, err := fc.Info(fctx, 4)
		return err == nil && info.NextOffset == int64(len(written[4]))
	})
	// The restored state is readable a moment before Raft logs the
	// install, so wait for the line; a follower that caught up from the
	// log never writes it.
	waitFor(t, 10*time.Second, "the wiped follower to log that it installed a snapshot (else it caught up from the log: the test did not test catch-up by snapshot)", func() bool {
		return follower.logContains("Installed remote snapshot")
	})

	for seg, want := range written {
		checkSegmentBytes(fctx, t, fc, seg, want)
		checkSegmentBytes(ctx, t, c, seg, want) // and the leader, linearizably
	}
	if info, err := fc.Info(fctx, 2); err != nil || info.State != bookie.SegmentSealed || info.Epoch != 2 || info.NextOffset != 60 {
		t.Fatalf("segment 2 on the wiped follower: %+v, %v; want sealed at 60 with epoch 2", info, err)
	}
	if _, err := fc.Info(fctx, 3); !errors.Is(err, bookie.ErrSegmentNotFound) {
		t.Fatalf("deleted segment 3 on the wiped follower: %v, want ErrSegmentNotFound", err)
	}
}

// checkSegmentBytes reads seg through c and checks it holds exactly want,
// byte for byte.
func checkSegmentBytes(ctx context.Context, t *testing.T, c bookie.Client, seg uint64, want [][]byte) {
	t.Helper()
	es, err := readAll(ctx, t, c, seg)
	if err != nil {
		t.Fatalf("reading segment %d: %v", seg, err)
	}
	if len(es) != len(want) {
		t.Fatalf("segment %d: %d entries, want %d", seg, len(es), len(want))
	}
	for i, e := range es {
		if e.BaseOffset != int64(i) || !bytes.Equal(e.Data, want[i]) {
			t.Fatalf("segment %d entry %d: base offset %d, %d bytes; want the %d bytes written at offset %d", seg, i, e.BaseOffset, len(e.Data), len(want[i]), i)
		}
	}
}

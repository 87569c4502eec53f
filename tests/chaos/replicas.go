package chaos

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/magnetar-mq/magnetar/bookie"
)

// segmentDigest is what one replica holds of one segment.
type segmentDigest struct {
	info    bookie.SegmentInfo
	entries int
	sum     [sha256.Size]byte // of every entry's offsets and bytes, in order
}

func (d segmentDigest) String() string {
	return fmt.Sprintf("%v [%d,%d) epoch %d, %d entries, %d bytes, sha256 %x", d.info.State, d.info.StartOffset, d.info.NextOffset,
		d.info.Epoch, d.entries, d.info.Bytes, d.sum[:6])
}

// replicaState is every segment a replica of a shard holds, by ID.
type replicaState map[uint64]segmentDigest

// readReplica reads everything one replica has applied, with follower
// reads sent to that replica only.
func readReplica(ctx context.Context, conns *bookie.Conns, shard, addr string) (replicaState, error) {
	rc := conns.Shard(shard, []string{addr})
	defer rc.Close()
	ctx = bookie.WithFollowerReads(ctx)
	out := replicaState{}
	var after uint64
	for {
		page, err := rc.ListSegments(ctx, after, 0)
		if err != nil {
			return nil, fmt.Errorf("listing: %w", err)
		}
		for _, info := range page {
			d, err := readSegment(ctx, rc, info)
			if err != nil {
				return nil, fmt.Errorf("segment %d: %w", info.ID, err)
			}
			out[info.ID] = d
			after = info.ID
		}
		if len(page) < bookie.MaxListSegments {
			return out, nil
		}
	}
}

func readSegment(ctx context.Context, rc *bookie.RemoteClient, info bookie.SegmentInfo) (segmentDigest, error) {
	d := segmentDigest{info: info}
	h := sha256.New()
	for from := info.StartOffset; from < info.NextOffset; {
		es, err := rc.Read(ctx, info.ID, from, 4<<20)
		if err != nil {
			return d, err
		}
		if len(es) == 0 {
			return d, fmt.Errorf("no entry at %d below its next offset %d", from, info.NextOffset)
		}
		for _, e := range es {
			if e.LastOffset < from {
				continue
			}
			h.Write(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(e.BaseOffset)), uint64(e.LastOffset)))
			h.Write(e.Data)
			d.entries++
			from = e.LastOffset + 1
		}
	}
	copy(d.sum[:], h.Sum(nil))
	return d, nil
}

// diffReplicas describes how the replicas of a shard differ ("" when
// they hold the same segments with the same bytes).
func diffReplicas(shard string, names []string, states []replicaState) string {
	var out []string
	ids := map[uint64]bool{}
	for _, st := range states {
		for id := range st {
			ids[id] = true
		}
	}
	for id := range ids {
		var views []string
		same := true
		first, ok0 := states[0][id]
		for i, st := range states {
			d, ok := st[id]
			if !ok {
				views = append(views, names[i]+": missing")
				same = false
				continue
			}
			views = append(views, names[i]+": "+d.String())
			if !ok0 || d != first {
				same = false
			}
		}
		if !same {
			out = append(out, fmt.Sprintf("%s segment %d: %s", shard, id, strings.Join(views, " | ")))
		}
	}
	return strings.Join(out, "\n")
}

// checkReplicas polls until the live replicas of each shard hold identical
// segments, or the timeout passes; what still differs then is a violation.
func checkReplicas(ctx context.Context, c *cluster, timeout time.Duration) ([]violation, map[string]int) {
	conns := bookie.NewConns()
	defer conns.Close()
	var out []violation
	segments := map[string]int{}
	for _, shard := range shardIDs {
		var names []string
		var last string
		var lastErr error
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err := poll(pctx, time.Second, func() (bool, error) {
			names, last, lastErr = nil, "", nil
			var states []replicaState
			for _, b := range c.bookies {
				if !b.alive() {
					continue
				}
				st, err := readReplica(pctx, conns, shard, b.addrs["grpc"])
				if err != nil {
					lastErr = fmt.Errorf("%s: %w", b.name, err)
					return false, nil
				}
				names = append(names, b.name)
				states = append(states, st)
			}
			if len(states) == 0 {
				return false, nil
			}
			segments[shard] = len(states[0])
			last = diffReplicas(shard, names, states)
			return last == "", nil
		})
		cancel()
		switch {
		case err == nil && len(names) < len(c.bookies):
			out = append(out, violation{"replicas", fmt.Sprintf("%s: only %v could be compared (a bookie is down)", shard, names)})
		case err == nil:
		case last != "":
			out = append(out, violation{"replicas", fmt.Sprintf("the replicas of %s still differ after %v:\n%s", shard, timeout, last)})
		default:
			out = append(out, violation{"replicas", fmt.Sprintf("the replicas of %s could not be read within %v: %v", shard, timeout, lastErr)})
		}
	}
	return out, segments
}

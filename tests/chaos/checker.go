package chaos

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/magnetar-mq/magnetar/client"
)

// violation is one broken guarantee.
type violation struct {
	kind   string // lost, duplicate, gap, order, misplaced, replicas, crash, ...
	detail string
}

// stored is one record read back from a partition.
type stored struct {
	offset int64
	value  []byte
}

// partitionLog is a partition's records, as one reader read them.
type partitionLog map[int32][]stored

// readKafka reads every partition of topic from offset 0 to its end with a
// plain Kafka fetch (no group).
func readKafka(ctx context.Context, seeds []string, topic string) (partitionLog, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID("chaos-checker"))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing the end offsets of %s: %w", topic, err)
	}
	want := map[int32]int64{}
	start := map[string]map[int32]kgo.Offset{topic: {}}
	ends.Each(func(o kadm.ListedOffset) {
		want[o.Partition] = o.Offset
		start[topic][o.Partition] = kgo.NewOffset().At(0)
	})
	cl.Close()
	cl, err = kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID("chaos-checker"), kgo.ConsumePartitions(start))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	out := partitionLog{}
	done := func() bool {
		for p, end := range want {
			recs := out[p]
			if end > 0 && (len(recs) == 0 || recs[len(recs)-1].offset < end-1) {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return out, fmt.Errorf("reading %s with Kafka fetches: %w (got %s of %v)", topic, ctx.Err(), counts(out), want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out[r.Partition] = append(out[r.Partition], stored{offset: r.Offset, value: slices.Clone(r.Value)})
		})
	}
	return out, nil
}

// readNative reads every partition of topic from the start with a native
// Reader, up to the ends the Kafka read found.
func readNative(ctx context.Context, nc *client.Client, topic string, ends map[int32]int64) (partitionLog, error) {
	r, err := nc.CreateReader(ctx, client.ReaderOptions{Topic: topic, InitialPosition: client.Earliest})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out := partitionLog{}
	left := map[int32]bool{}
	for p, end := range ends {
		if end > 0 {
			left[p] = true
		}
	}
	for len(left) > 0 {
		m, err := r.Next(ctx)
		if err != nil {
			return out, fmt.Errorf("reading %s with a native reader: %w (got %s)", topic, err, counts(out))
		}
		p := m.ID.Partition
		out[p] = append(out[p], stored{offset: m.ID.Offset, value: m.Value})
		if m.ID.Offset >= ends[p]-1 {
			delete(left, p)
		}
	}
	return out, nil
}

func counts(l partitionLog) string {
	s := "{"
	for _, p := range slices.Sorted(maps.Keys(l)) {
		s += fmt.Sprintf(" %d:%d", p, len(l[p]))
	}
	return s + " }"
}

// ends returns each partition's end offset as read.
func (l partitionLog) ends() map[int32]int64 {
	out := map[int32]int64{}
	for p, recs := range l {
		if len(recs) > 0 {
			out[p] = recs[len(recs)-1].offset + 1
		}
	}
	return out
}

// compareReads reports where the native and the Kafka reads of a topic
// differ (they read the same stored batches).
func compareReads(topic string, kafka, native partitionLog) []violation {
	var out []violation
	for _, p := range slices.Sorted(maps.Keys(kafka)) {
		k, n := kafka[p], native[p]
		if len(k) != len(n) {
			out = append(out, violation{"readers-disagree", fmt.Sprintf("%s/%d: %d records by Kafka fetch, %d by the native reader", topic, p, len(k), len(n))})
			continue
		}
		for i := range k {
			if k[i].offset != n[i].offset || string(k[i].value) != string(n[i].value) {
				out = append(out, violation{"readers-disagree", fmt.Sprintf("%s/%d record %d: Kafka offset %d %.30q, native offset %d %.30q",
					topic, p, i, k[i].offset, k[i].value, n[i].offset, n[i].value)})
				break
			}
		}
	}
	return out
}

// topicCounts summarises a topic for the report.
type topicCounts struct {
	stored         int // records read back
	acked, failed  int // sends by the topic's producers
	pending        int
	failedStored   int // failed or unanswered sends found stored (allowed, once)
	failedAbsent   int
	consumedMisses map[string]int
}

// analyze checks one topic's records against what its producers were told.
func analyze(topic string, log partitionLog, h *history) (topicCounts, []violation) {
	var tc topicCounts
	var out []violation
	where := map[msgID][]client.MessageID{}
	for _, p := range slices.Sorted(maps.Keys(log)) {
		recs := log[p]
		tc.stored += len(recs)
		last := map[string]int{} // producer -> last sequence in this partition
		next := int64(0)         // offsets are dense from 0
		for _, r := range recs {
			if r.offset != next {
				out = append(out, violation{"gap", fmt.Sprintf("%s/%d: offset %d follows %d (offsets must be dense from 0)", topic, p, r.offset, next-1)})
			}
			next = r.offset + 1
			id, ok := decodeValue(r.value)
			if !ok {
				out = append(out, violation{"undecodable", fmt.Sprintf("%s/%d@%d: %.40q", topic, p, r.offset, r.value)})
				continue
			}
			where[id] = append(where[id], client.MessageID{Partition: p, Offset: r.offset})
			if prev, seen := last[id.producer]; seen && id.seq <= prev {
				out = append(out, violation{"order", fmt.Sprintf("%s/%d@%d: %v after %s:%d", topic, p, r.offset, id, id.producer, prev)})
			}
			last[id.producer] = id.seq
		}
	}
	for id, at := range where {
		if len(at) > 1 {
			out = append(out, violation{"duplicate", fmt.Sprintf("%s: %v stored %d times, at %v", topic, id, len(at), at)})
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, prod := range slices.Sorted(maps.Keys(h.mu.sends)) {
		if h.mu.topicOf[prod] != topic {
			continue
		}
		for seq, s := range h.mu.sends[prod] {
			id := msgID{prod, seq}
			at := where[id]
			switch s.state {
			case sendAcked:
				tc.acked++
				want := client.MessageID{Partition: s.partition, Offset: s.offset}
				switch {
				case len(at) == 0:
					out = append(out, violation{"lost", fmt.Sprintf("%s: %v acknowledged at %v (%s) is not stored", topic, id, want, s.doneAt.Format("15:04:05.000"))})
				case at[0] != want:
					out = append(out, violation{"misplaced", fmt.Sprintf("%s: %v acknowledged at %v is stored at %v", topic, id, want, at[0])})
				}
			case sendFailed, sendPending:
				if s.state == sendFailed {
					tc.failed++
				} else {
					tc.pending++
				}
				if len(at) > 0 {
					tc.failedStored++
				} else {
					tc.failedAbsent++
				}
			}
		}
	}
	tc.consumedMisses = map[string]int{}
	for cons, t := range h.mu.consumed {
		if t != topic {
			continue
		}
		for prod, sends := range h.mu.sends {
			if h.mu.topicOf[prod] != topic {
				continue
			}
			for seq, s := range sends {
				if s.state == sendAcked && h.mu.received[cons][msgID{prod, seq}] == 0 {
					tc.consumedMisses[cons]++
				}
			}
		}
		if n := tc.consumedMisses[cons]; n > 0 {
			out = append(out, violation{"not-consumed", fmt.Sprintf("%s: consumer %s never received %d acknowledged messages", topic, cons, n)})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].kind < out[j].kind })
	return tc, out
}

// checkTopic reads topic back both ways and analyzes it.
func checkTopic(ctx context.Context, c *cluster, nc *client.Client, topic string, h *history) (topicCounts, []violation) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	kl, err := readKafka(ctx, c.kafkaAddrs(), topic)
	if err != nil {
		return topicCounts{}, []violation{{"unreadable", err.Error()}}
	}
	nl, err := readNative(ctx, nc, topic, kl.ends())
	var out []violation
	if err != nil {
		out = append(out, violation{"unreadable", err.Error()})
	} else {
		out = append(out, compareReads(topic, kl, nl)...)
	}
	tc, vs := analyze(topic, kl, h)
	return tc, append(out, vs...)
}

package broker

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/internal/record"
)

// Dispatch: how a subscription hands messages to its consumers.
//
// A subscription with consumers attached has a dispatcher. It keeps the
// dispatch position (the next offset never looked at), the messages handed
// out and not yet acknowledged (pending, with the consumer holding each),
// the messages to hand out before new ones (replay, in offset order: those
// negatively acknowledged or timed out once their delay is over, those of
// a consumer that left, and, for Key_Shared, those whose consumer had no
// permits when they were read), and timers (nack delays, ack timeouts,
// delayed delivery). One consumer claims messages at a time (dispatchMu),
// so two never claim the same offset.
//
// Every type uses the same claim; they differ in who may take a message:
//   - Exclusive: the one consumer.
//   - Failover: the active consumer only — consumers sorted by name, the
//     one at index partition % n — so a partitioned topic's partitions
//     spread over the consumers. When the active consumer changes, what the
//     old one held is handed out again, in order, to the new one.
//   - Shared: whoever has permits.
//   - Key_Shared: the consumer owning the key's hash on a hash ring, and
//     only while no other consumer still holds unacknowledged messages of
//     that hash. When a consumer joins, the hashes it takes over are
//     "draining" until the old owner acknowledges (or gives back) what it
//     holds of them; only those hashes wait, every other key flows on. This
//     keeps per-key order across joins and leaves without stalling the
//     whole subscription (Pulsar's older design holds a new consumer back
//     until the cursor passes its join point).
//
// The dispatcher lives in memory. When the last consumer leaves it is
// dropped, and the next consumer starts again from the durable cursor, as
// after a broker restart: unacknowledged messages are delivered again.

// SubscriptionType is how a subscription hands messages to its consumers.
type SubscriptionType int

const (
	// Exclusive allows one consumer at a time (the default).
	Exclusive SubscriptionType = iota
	// Shared spreads messages over every attached consumer; ordering
	// across consumers is not kept.
	Shared
	// Failover lets one consumer at a time receive; the others stand by.
	Failover
	// KeyShared spreads messages over consumers by key, keeping each key's
	// order.
	KeyShared
)

var subscriptionTypeNames = [...]string{"Exclusive", "Shared", "Failover", "Key_Shared"}

func (t SubscriptionType) String() string {
	if t >= 0 && int(t) < len(subscriptionTypeNames) {
		return subscriptionTypeNames[t]
	}
	return fmt.Sprintf("SubscriptionType(%d)", int(t))
}

// ordered reports whether the type hands every message to one consumer in
// offset order.
func (t SubscriptionType) ordered() bool { return t == Exclusive || t == Failover }

// maxReplay bounds the replay list of a Key_Shared subscription: when the
// consumers owning the keys read so far have no permits, reading stops
// rather than growing the list without end.
const maxReplay = 50_000

// pendingMsg is a message handed out and not yet acknowledged.
type pendingMsg struct {
	c    *Consumer
	hash uint32 // Key_Shared: the key's hash
	seq  uint64 // which delivery, to tell a stale ack timeout from a live one
}

// replayEntry is a message to hand out before new ones.
type replayEntry struct {
	off  int64
	hash uint32
}

// dispatcher is the dispatch state of a subscription with consumers,
// guarded by subscription.mu.
type dispatcher struct {
	typ       SubscriptionType
	partition int32
	consumers []*Consumer // in attach order
	active    *Consumer   // Exclusive and Failover: the one that receives
	readPos   int64
	pending   map[int64]pendingMsg
	replay    []replayEntry // sorted by offset, all below readPos
	timers    timerHeap
	delayed   int // delayed-delivery entries in timers
	delay     delayIndex
	keys      *keyRing
	wake      chan struct{} // closed and replaced when there is more to hand out
	seq       uint64
}

func newDispatcher(typ SubscriptionType, partition int32, readPos int64) *dispatcher {
	d := &dispatcher{typ: typ, partition: partition, readPos: readPos,
		pending: make(map[int64]pendingMsg), wake: make(chan struct{}), delay: newDelayIndex()}
	if typ == KeyShared {
		d.keys = newKeyRing()
	}
	return d
}

// wakeLocked wakes every consumer waiting for something to claim.
func (d *dispatcher) wakeLocked() {
	close(d.wake)
	d.wake = make(chan struct{})
}

// attachLocked adds c (s.mu held).
func (s *subscription) attachLocked(c *Consumer, typ SubscriptionType) {
	d := s.mu.disp
	if d == nil {
		d = newDispatcher(typ, s.p.index, s.mu.next)
		s.mu.disp = d
	}
	d.consumers = append(d.consumers, c)
	if d.keys != nil {
		d.keys.add(c)
	}
	d.membershipChangedLocked()
}

// detach removes c: what it held unacknowledged is handed out again. The
// last consumer leaving drops the dispatcher.
func (s *subscription) detach(c *Consumer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.mu.disp
	if d == nil {
		return
	}
	i := slices.Index(d.consumers, c)
	if i < 0 {
		return // detached before
	}
	d.consumers = slices.Delete(d.consumers, i, i+1)
	if len(d.consumers) == 0 {
		s.mu.disp = nil
		close(d.wake)
		return
	}
	if d.keys != nil {
		d.keys.remove(c)
	}
	d.replayHeldLocked(func(h *Consumer) bool { return h == c })
	d.membershipChangedLocked()
}

// membershipChangedLocked picks the active consumer of an ordered type;
// when it changes, everything handed out is handed out again, in order, to
// the new one.
func (d *dispatcher) membershipChangedLocked() {
	if d.typ.ordered() {
		active := d.consumers[0]
		if d.typ == Failover {
			sorted := slices.Clone(d.consumers)
			slices.SortStableFunc(sorted, func(a, b *Consumer) int { return cmpString(a.name, b.name) })
			active = sorted[int(d.partition)%len(sorted)]
		}
		if active != d.active && d.active != nil {
			d.replayHeldLocked(func(*Consumer) bool { return true })
		}
		d.active = active
	}
	d.wakeLocked()
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// replayHeldLocked moves the pending messages of the holders matching held
// to the replay list (no redelivery is counted: the consumer did not fail
// them).
func (d *dispatcher) replayHeldLocked(held func(*Consumer) bool) {
	var back []replayEntry
	for off, pm := range d.pending {
		if held(pm.c) {
			back = append(back, replayEntry{off, pm.hash})
			d.releaseLocked(off, pm)
		}
	}
	d.addReplayLocked(back...)
}

// releaseLocked forgets a pending message.
func (d *dispatcher) releaseLocked(off int64, pm pendingMsg) {
	delete(d.pending, off)
	if d.keys != nil && d.keys.release(pm.hash) {
		d.wakeLocked()
	}
}

// addReplayLocked merges entries into the sorted replay list.
func (d *dispatcher) addReplayLocked(entries ...replayEntry) {
	if len(entries) == 0 {
		return
	}
	for _, e := range entries {
		i := sort.Search(len(d.replay), func(i int) bool { return d.replay[i].off >= e.off })
		if i < len(d.replay) && d.replay[i].off == e.off {
			continue
		}
		d.replay = slices.Insert(d.replay, i, e)
		if d.keys != nil {
			d.keys.replayAdded(e.hash)
		}
	}
	d.wakeLocked()
}

// mayReceive reports whether c may be handed anything now.
func (d *dispatcher) mayReceive(c *Consumer) bool {
	return !d.typ.ordered() || d.active == c
}

// takeable reports whether c may take a message with the given key hash.
func (d *dispatcher) takeable(c *Consumer, hash uint32) bool {
	return d.keys == nil || d.keys.takeable(c, hash)
}

// dispatchWait is what a consumer with nothing to claim waits for.
type dispatchWait struct {
	wake, data <-chan struct{}
	until      time.Time // the next timer; zero if none
}

// wait blocks until there may be something to claim, or ctx or the
// partition p ends.
func (w dispatchWait) wait(ctx context.Context, p *partition) error {
	var timeout <-chan time.Time
	if !w.until.IsZero() {
		t := time.NewTimer(time.Until(w.until))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-w.wake:
	case <-w.data:
	case <-timeout:
	case <-ctx.Done():
		return ctx.Err()
	case <-p.ctx.Done():
		return p.closedErr()
	}
	return nil
}

// claim hands c up to permits messages: those to replay first, then new
// ones. With nothing to hand out it returns what to wait on.
func (c *Consumer) claim(ctx context.Context, permits int64) ([]Delivery, dispatchWait, error) {
	s, p := c.sub, c.sub.p
	s.dispatchMu.Lock()
	defer s.dispatchMu.Unlock()

	now := time.Now()
	s.mu.Lock()
	d := s.mu.disp
	if d == nil || !slices.Contains(d.consumers, c) {
		s.mu.Unlock()
		return nil, dispatchWait{}, ErrClosed
	}
	if !d.typ.ordered() {
		s.mu.Unlock()
		if err := s.rescanDelayed(ctx, d, now); err != nil {
			return nil, dispatchWait{}, err
		}
		s.mu.Lock()
		if s.mu.disp != d {
			s.mu.Unlock()
			return nil, dispatchWait{}, ErrClosed
		}
	}
	s.fireTimersLocked(d, now)
	wait := dispatchWait{wake: d.wake, until: d.timers.next()}
	if !d.mayReceive(c) {
		s.mu.Unlock()
		return nil, wait, nil
	}
	var again []replayEntry
	rest := d.replay[:0]
	for _, e := range d.replay {
		acked := e.off < s.mu.next || s.mu.acks.has(e.off)
		take := !acked && int64(len(again)) < permits && d.takeable(c, e.hash)
		if !acked && !take {
			rest = append(rest, e)
			continue
		}
		if d.keys != nil {
			d.keys.replayRemoved(e.hash)
		}
		if take {
			again = append(again, e)
		}
	}
	clear(d.replay[len(rest):])
	d.replay = rest
	readPos, replayFull := d.readPos, len(d.replay) >= maxReplay
	s.mu.Unlock()

	out, back, err := c.readReplay(ctx, again)
	if err != nil {
		return nil, dispatchWait{}, err
	}
	// Nothing new while older messages wait for the next claim: an
	// ordered subscription hands them out first.
	if remaining := permits - int64(len(out)); remaining > 0 && !replayFull && !back {
		p.mu.Lock()
		end, changed := p.mu.next, p.mu.changed
		p.mu.Unlock()
		if readPos < end {
			entries, err := p.read(ctx, readPos, maxReadBytes)
			if err == nil {
				out, readPos, err = s.scanNew(c, d, out, entries, readPos, permits, now)
			}
			if err != nil {
				s.abandonClaim(d, out, readPos)
				return nil, dispatchWait{}, err
			}
		} else {
			wait.data = changed
		}
	}
	return s.finishClaim(c, d, out, readPos, wait)
}

// readReplay reads the records of the replay entries c took, in order,
// up to maxClaimBytes (at least one message): the entries not handed out
// go back to the replay list, unread, and back says so. An offset no
// longer stored (retention) is skipped.
func (c *Consumer) readReplay(ctx context.Context, again []replayEntry) (out []Delivery, back bool, err error) {
	offs := make([]int64, len(again))
	for i, e := range again {
		offs[i] = e.off
	}
	bytes := 0
	for i := 0; i < len(offs); {
		if bytes >= maxClaimBytes && len(out) > 0 {
			c.sub.putBack(again[i:])
			back = true
			break
		}
		// One read serves every offset in the batches it got.
		entries, err := c.sub.p.read(ctx, offs[i], maxReadBytes)
		if err != nil {
			c.sub.putBack(again[i:])
			return nil, false, err
		}
		start, n := i, len(out)
		if out, i, err = pickOffsets(out, entries, offs, i); err != nil {
			c.sub.putBack(again[start:])
			return nil, false, err
		}
		for _, d := range out[n:] {
			bytes += deliveryBytes(d.Record)
		}
		if i == start {
			i++
		}
	}
	for j := range out {
		// pickOffsets keeps order, so hashes line up by offset.
		k := sort.Search(len(again), func(k int) bool { return again[k].off >= out[j].Offset })
		out[j].hash = again[k].hash
	}
	// One read may have decoded more than maxClaimBytes: what is over it
	// goes back too.
	bytes = 0
	for j := range out {
		if bytes += deliveryBytes(out[j].Record); bytes > maxClaimBytes && j > 0 {
			rest := make([]replayEntry, 0, len(out)-j)
			for _, d := range out[j:] {
				rest = append(rest, replayEntry{d.Offset, d.hash})
			}
			c.sub.putBack(rest)
			return out[:j], true, nil
		}
	}
	return out, back, nil
}

// scanNew looks at the stored batches from readPos on: messages not yet
// acknowledged go to c while it has permits and may take them, delayed ones
// to the timers, the others (Key_Shared: another consumer's keys) to the
// replay list. It returns the new dispatch position.
func (s *subscription) scanNew(c *Consumer, d *dispatcher, out []Delivery, entries []bookie.Entry, readPos, permits int64, now time.Time) ([]Delivery, int64, error) {
	delays := !d.typ.ordered()
	nowMs := now.UnixMilli()
	bytes := 0
	for _, o := range out {
		bytes += deliveryBytes(o.Record)
	}
	// full: c has what its permits, or maxClaimBytes, allow (at least one
	// message).
	full := func() bool { return int64(len(out)) >= permits || (bytes >= maxClaimBytes && len(out) > 0) }
	for _, e := range entries {
		if full() {
			break
		}
		if e.LastOffset < readPos {
			continue
		}
		h, err := record.ParseHeader(e.Data)
		if err != nil {
			return out, readPos, err
		}
		if h.IsControl() {
			readPos = e.LastOffset + 1
			continue
		}
		s.mu.Lock()
		grew := false
		err = record.DecodeRecords(e.Data, func(r record.Record) error {
			if r.Offset < readPos || full() {
				return nil
			}
			readPos = r.Offset + 1
			if r.Offset < s.mu.next || s.mu.acks.has(r.Offset) {
				return nil
			}
			hash := noKeyHash
			if d.keys != nil {
				hash = keyHash(r.Key)
			}
			if delays {
				if at := DeliverAt(r); at > nowMs {
					d.addDelayedLocked(r.Offset, time.UnixMilli(at), hash)
					return nil
				}
			}
			if d.keys == nil || d.keys.takeableNew(c, hash) {
				out = append(out, Delivery{Offset: r.Offset, Record: r, hash: hash})
				bytes += deliveryBytes(r)
				return nil
			}
			d.replay = append(d.replay, replayEntry{r.Offset, hash})
			d.keys.replayAdded(hash)
			grew = true
			return nil
		})
		if grew {
			d.wakeLocked()
		}
		s.mu.Unlock()
		if err != nil {
			return out, readPos, fmt.Errorf("broker: decoding batch at offset %d: %w", e.BaseOffset, err)
		}
	}
	return out, readPos, nil
}

// finishClaim records what c claimed as pending and moves the dispatch
// position.
func (s *subscription) finishClaim(c *Consumer, d *dispatcher, out []Delivery, readPos int64, wait dispatchWait) ([]Delivery, dispatchWait, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.disp != d {
		return nil, dispatchWait{}, ErrClosed // the last consumer left: all restarts from the cursor
	}
	d.readPos = max(d.readPos, readPos)
	if !slices.Contains(d.consumers, c) {
		d.replayDeliveriesLocked(out) // c left while reading: the others get what it claimed
		return nil, dispatchWait{}, ErrClosed
	}
	if !d.mayReceive(c) {
		d.replayDeliveriesLocked(out) // c stopped being the active consumer while reading
		wait.wake = d.wake
		return nil, wait, nil
	}
	var deadline time.Time
	if c.opts.AckTimeout > 0 {
		deadline = time.Now().Add(c.opts.AckTimeout)
	}
	for i := range out {
		o := &out[i]
		d.seq++
		d.pending[o.Offset] = pendingMsg{c: c, hash: o.hash, seq: d.seq}
		if d.keys != nil {
			d.keys.hold(c, o.hash)
		}
		if !deadline.IsZero() {
			d.timers.push(timer{at: deadline, kind: timerAckTimeout, off: o.Offset, seq: d.seq})
		}
		o.RedeliveryCount = s.mu.redeliveries[o.Offset]
	}
	rescan, rescanAt := d.rescanDueLocked(time.Now())
	if (len(out) == 0 && wait.data == nil && wait.until.IsZero()) || rescan {
		// Everything read was acknowledged, delayed or someone else's, or
		// a rescan goes on: look again at once.
		closed := make(chan struct{})
		close(closed)
		wait.data = closed
	}
	wait.wake = d.wake
	for _, n := range []time.Time{d.timers.next(), rescanAt} {
		if !n.IsZero() && (wait.until.IsZero() || n.Before(wait.until)) {
			wait.until = n
		}
	}
	return out, wait, nil
}

// abandonClaim undoes a claim that failed after taking out (replayed and
// new messages): they go back to the replay list, and the dispatch
// position keeps what was looked at, so nothing is looked at twice.
func (s *subscription) abandonClaim(d *dispatcher, out []Delivery, readPos int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.disp != d {
		return
	}
	d.readPos = max(d.readPos, readPos)
	d.replayDeliveriesLocked(out)
}

// replayDeliveriesLocked puts claimed messages back in the replay list.
func (d *dispatcher) replayDeliveriesLocked(out []Delivery) {
	back := make([]replayEntry, len(out))
	for i, o := range out {
		back[i] = replayEntry{o.Offset, o.hash}
	}
	d.addReplayLocked(back...)
}

// putBack returns replay entries after a failed read.
func (s *subscription) putBack(entries []replayEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.mu.disp; d != nil {
		d.addReplayLocked(entries...)
	}
}

// Nack negatively acknowledges offsets this consumer holds: they are
// handed out again (to any consumer that may take them) once the
// consumer's nack delay is over, and their redelivery count goes up.
func (c *Consumer) Nack(offsets []int64) error {
	s := c.sub
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.mu.disp
	if d == nil {
		return ErrClosed
	}
	now := time.Now()
	var back []replayEntry
	for _, off := range offsets {
		pm, ok := d.pending[off]
		if !ok || pm.c != c {
			continue
		}
		d.releaseLocked(off, pm)
		n := s.countRedeliveryLocked(off)
		if delay := c.nackDelay(n); delay > 0 {
			d.timers.push(timer{at: now.Add(delay), kind: timerReplay, off: off, hash: pm.hash})
			continue
		}
		back = append(back, replayEntry{off, pm.hash})
	}
	d.addReplayLocked(back...)
	return nil
}

// nackDelay is how long a message nacked for the n-th time waits.
func (c *Consumer) nackDelay(n uint32) time.Duration {
	delay := c.opts.NackDelay
	if c.opts.NackMaxDelay <= delay || delay <= 0 {
		return delay
	}
	for i := uint32(1); i < n && delay < c.opts.NackMaxDelay; i++ {
		delay *= 2
	}
	return min(delay, c.opts.NackMaxDelay)
}

// countRedeliveryLocked raises and returns the redelivery count of off.
func (s *subscription) countRedeliveryLocked(off int64) uint32 {
	if s.mu.redeliveries == nil {
		s.mu.redeliveries = make(map[int64]uint32)
	}
	s.mu.redeliveries[off]++
	return s.mu.redeliveries[off]
}

// pickOffsets appends the records of want[i:] found in entries (stored
// batches in offset order), in order, and returns the index of the first
// offset not found.
func pickOffsets(out []Delivery, entries []bookie.Entry, want []int64, i int) ([]Delivery, int, error) {
	for _, e := range entries {
		if i == len(want) {
			break
		}
		if e.LastOffset < want[i] {
			continue
		}
		if e.BaseOffset > want[i] {
			break // not in what was read: the caller reads again from want[i]
		}
		err := record.DecodeRecords(e.Data, func(r record.Record) error {
			for i < len(want) && want[i] < r.Offset {
				i++ // not in the batch (compacted away): skip it
			}
			if i < len(want) && r.Offset == want[i] {
				out = append(out, Delivery{Offset: r.Offset, Record: r})
				i++
			}
			return nil
		})
		if err != nil {
			return out, i, fmt.Errorf("broker: decoding batch at offset %d: %w", e.BaseOffset, err)
		}
	}
	return out, i, nil
}

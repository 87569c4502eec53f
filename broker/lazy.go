package broker

import "time"

// Lazy topics: a partition is loaded on first use (partitionFor) and
// unloaded once idle, so an idle topic costs no broker memory.
//
// Every use of a partition goes through partitionFor, which stamps the
// partition (touch): publishes, subscribes, Kafka fetches and offset
// queries, commits, stats. Every IdleTimeout/4 (at most every 30 s) the
// broker unloads each partition that has not been stamped for IdleTimeout
// and has no consumer attached: a consumer waiting for messages uses the
// partition without touching it. An idle producer does not keep its
// partition loaded: its next publish loads it again. Unloading is the
// same close as a bundle unload: appends queued finish, cursors are
// flushed, the tail cache and subscriptions are dropped. A consumer that
// attaches in the instant between the idle check and the close is
// disconnected like on any unload, and its client reconnects.

// touch stamps the partition as used now.
func (p *partition) touch() { p.lastUsed.Store(time.Now().UnixNano()) }

// idleSince reports whether the partition was last used before t and has
// no consumer or native producer attached.
func (p *partition) idleSince(t time.Time) bool {
	if p.lastUsed.Load() >= t.UnixNano() {
		return false
	}
	p.producers.mu.Lock()
	producing := p.producers.attached > 0
	p.producers.mu.Unlock()
	if producing {
		return false
	}
	p.mu.Lock()
	subs := make([]*subscription, 0, len(p.mu.subs))
	for _, s := range p.mu.subs {
		subs = append(subs, s)
	}
	p.mu.Unlock()
	for _, s := range subs {
		if s.hasConsumers() {
			return false
		}
	}
	return true
}

// hasConsumers reports whether a consumer is attached to the subscription.
func (s *subscription) hasConsumers() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.disp != nil && len(s.mu.disp.consumers) > 0
}

// unloadIdleLoop unloads idle partitions until the broker closes.
func (b *Broker) unloadIdleLoop() {
	every := min(b.cfg.IdleTimeout/4, 30*time.Second)
	t := time.NewTicker(max(every, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		b.unloadIdle(time.Now().Add(-b.cfg.IdleTimeout))
	}
}

// unloadIdle unloads the partitions idle since before t and returns how
// many.
func (b *Broker) unloadIdle(t time.Time) int {
	n := 0
	for _, p := range b.loadedPartitions() {
		if !p.idleSince(t) {
			continue
		}
		b.unload(p)
		b.metrics.partitionsIdleUnloaded.Inc()
		p.log.Info("partition unloaded: idle", "idle_timeout", b.cfg.IdleTimeout)
		n++
	}
	return n
}

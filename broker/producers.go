package broker

import (
	"context"
	"fmt"
	"sync"
)

// ProducerAccessMode says how a producer shares a partition with others.
type ProducerAccessMode int

const (
	// SharedAccess lets any number of producers publish (the default).
	SharedAccess ProducerAccessMode = iota
	// ExclusiveAccess is refused (ErrProducerBusy) while another producer
	// is attached, and refuses others while attached.
	ExclusiveAccess
	// WaitForExclusiveAccess waits until no producer is attached, then
	// holds the partition like ExclusiveAccess.
	WaitForExclusiveAccess
)

func (m ProducerAccessMode) String() string {
	switch m {
	case SharedAccess:
		return "Shared"
	case ExclusiveAccess:
		return "Exclusive"
	case WaitForExclusiveAccess:
		return "WaitForExclusive"
	}
	return fmt.Sprintf("ProducerAccessMode(%d)", int(m))
}

// producerAccess counts a loaded partition's attached producers. It lives
// with the loaded partition: when the partition moves to another broker,
// producers attach again there.
type producerAccess struct {
	mu        sync.Mutex
	attached  int
	exclusive bool
	changed   chan struct{} // closed and replaced when a producer detaches
}

// ProducerLease is a producer's registration on a partition.
type ProducerLease struct {
	p    *partition
	once sync.Once
}

// AttachProducer registers a producer on a partition under mode, waiting
// (WaitForExclusiveAccess) as long as ctx allows. Release the lease when
// the producer goes.
func (b *Broker) AttachProducer(ctx context.Context, name TopicName, partition int32, mode ProducerAccessMode) (*ProducerLease, error) {
	if mode < SharedAccess || mode > WaitForExclusiveAccess {
		return nil, fmt.Errorf("%w: unknown producer access mode %d", ErrInvalidArgument, mode)
	}
	p, err := b.partitionFor(ctx, name, partition)
	if err != nil {
		return nil, err
	}
	pa := &p.producers
	for {
		pa.mu.Lock()
		if pa.changed == nil {
			pa.changed = make(chan struct{})
		}
		free := pa.attached == 0
		switch {
		case mode == SharedAccess && !pa.exclusive, mode != SharedAccess && free:
			pa.attached++
			pa.exclusive = mode != SharedAccess
			pa.mu.Unlock()
			return &ProducerLease{p: p}, nil
		case mode != WaitForExclusiveAccess:
			pa.mu.Unlock()
			return nil, fmt.Errorf("%w: %s-%d has %d producer(s)%s; asked for %s access", ErrProducerBusy,
				name, partition, pa.attached, map[bool]string{true: ", one exclusive", false: ""}[pa.exclusive], mode)
		}
		changed := pa.changed
		pa.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-p.ctx.Done():
			return nil, p.closedErr()
		}
	}
}

// Release detaches the producer; it is safe to call more than once.
func (l *ProducerLease) Release() {
	l.once.Do(func() {
		pa := &l.p.producers
		pa.mu.Lock()
		defer pa.mu.Unlock()
		pa.attached--
		if pa.attached == 0 {
			pa.exclusive = false
		}
		if pa.changed != nil {
			close(pa.changed)
			pa.changed = make(chan struct{})
		}
	})
}

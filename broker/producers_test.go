package broker

import (
	"context"
	"errors"
	"testing"
	"time"
)

// An exclusive producer keeps others out and is refused while others are
// attached; a producer waiting for exclusive access gets it once the
// others leave.
func TestProducerAccessModes(t *testing.T) {
	b := newBroker(t, newStores(t))
	ctx := ctxT(t)
	n := topic(t, b, "access", 1)
	shared, err := b.AttachProducer(ctx, n, 0, SharedAccess)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AttachProducer(ctx, n, 0, ExclusiveAccess); !errors.Is(err, ErrProducerBusy) {
		t.Fatalf("exclusive beside a shared producer: %v, want ErrProducerBusy", err)
	}
	got := make(chan error, 1)
	var waited *ProducerLease
	go func() {
		var err error
		waited, err = b.AttachProducer(ctx, n, 0, WaitForExclusiveAccess)
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("wait-for-exclusive returned %v while a shared producer is attached", err)
	case <-time.After(50 * time.Millisecond):
	}
	shared.Release()
	shared.Release() // twice is harmless
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if _, err := b.AttachProducer(ctx, n, 0, SharedAccess); !errors.Is(err, ErrProducerBusy) {
		t.Fatalf("shared beside an exclusive producer: %v, want ErrProducerBusy", err)
	}
	waited.Release()
	l, err := b.AttachProducer(ctx, n, 0, ExclusiveAccess)
	if err != nil {
		t.Fatalf("exclusive after everyone left: %v", err)
	}
	l.Release()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.AttachProducer(cctx, n, 0, 7); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("unknown mode: %v", err)
	}
}

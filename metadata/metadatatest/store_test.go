package metadatatest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/magnetar-mq/magnetar/metadata"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestInMemoryStoreConformance(t *testing.T) {
	const history = 1000
	RunConformance(t, func(t *testing.T) metadata.Store {
		s := NewStore(WithHistoryRevisions(history))
		t.Cleanup(func() { _ = s.Close() })
		return s
	}, HistoryRevisions(history))
}

// fakeClock only moves when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestInMemoryLeasesExpireByTheInjectedClock(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	s := NewStore(WithClock(clock.Now), WithLeaseTick(time.Millisecond))
	t.Cleanup(func() { _ = s.Close() })
	ctx := ctxT(t)
	id, err := s.Grant(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	putLeased(t, s, id, "a")
	clock.Advance(59 * time.Minute)
	if _, err := s.KeepAlive(ctx, id); err != nil {
		t.Fatal(err)
	}
	clock.Advance(59 * time.Minute)
	if _, ok := mustGet(t, s, "a"); !ok {
		t.Fatal("a kept-alive lease expired")
	}
	clock.Advance(2 * time.Minute)
	waitMissing(t, s, "a") // the store's ticker notices the clock moved
	if _, err := s.KeepAlive(ctx, id); !errors.Is(err, metadata.ErrLeaseNotFound) {
		t.Fatalf("KeepAlive after expiry: err = %v, want ErrLeaseNotFound", err)
	}
}

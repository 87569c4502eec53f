package tests

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/metadata"
	"github.com/magnetar-mq/magnetar/metadata/metadatapb"
)

// The metadata leader fails, one fault at a time, under a lease holder (a
// broker-like process) and a writer, on three `magnetar meta` processes
// with the default election timeout. Whether the leader is paused
// (SIGSTOP: its connections stay open but nothing answers) or killed, the
// holder's keep-alives and the writes move to the new leader: the fault
// lasts longer than the lease's TTL and the lease survives it, the keys
// attached to it are never deleted, and writes flow again. The times from
// the fault to the first write and the first renewal on the new leader
// are logged (docs/metadata.md quotes them).
func TestALeaderFaultNeitherExpiresALiveLeaseNorStopsWrites(t *testing.T) {
	skipIfShort(t)
	for _, tc := range []struct {
		name   string
		signal syscall.Signal
	}{
		{"paused", syscall.SIGSTOP},
		{"killed", syscall.SIGKILL},
	} {
		t.Run("the leader is "+tc.name, func(t *testing.T) {
			const ttl = 4 * time.Second
			nodes, _ := startRoleCluster(t, "meta", "m", 3, "--election-timeout", metadata.DefaultElectionTimeout.String())
			c := dialMeta(t, nodes)
			ctx := testContext(t, 90*time.Second)
			h := startLeaseHolder(t, nodes, "owners/", ttl)
			waitFor(t, 10*time.Second, "two keep-alives", func() bool { return h.renewed.Load() >= 2 })
			w := startMetaWriter(ctx, t, c)
			waitFor(t, 10*time.Second, "a write", func() bool { return !w.firstAfter(time.Time{}).IsZero() })

			old := leaderOf(t, c, nodes)
			// A connection to the leader, open before the fault, on which
			// keep-alives wait while it is paused (see below).
			raw := metadatapb.NewMetadataClient(dialRawMeta(ctx, t, old.grpcAddr))
			renewedAtFault := h.renewed.Load()
			fault := time.Now()
			if err := old.cmd.Process.Signal(tc.signal); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = old.cmd.Process.Signal(syscall.SIGCONT) })
			t.Logf("leader %s %s", old.id, tc.name)

			// Six renewals at TTL/4 span more than a TTL of the fault: a
			// lease whose keep-alives were stuck on the old leader would
			// have expired on the new one by then.
			var firstRenewal time.Time
			waitFor(t, 30*time.Second, "six keep-alives after the fault", func() bool {
				if lost := h.lost(); lost != "" {
					t.Fatalf("the holder lost its lease %v after the fault: %s", time.Since(fault).Round(time.Millisecond), lost)
				}
				n := h.renewed.Load() - renewedAtFault
				if n > 0 && firstRenewal.IsZero() {
					firstRenewal = time.Now()
				}
				return n >= 6
			})
			waitFor(t, 10*time.Second, "a write after the fault", func() bool { return !w.firstAfter(fault).IsZero() })
			t.Logf("leader %s: first write acknowledged %v after the fault, first keep-alive %v after it; fault held %v (TTL %v)",
				tc.name, w.firstAfter(fault).Sub(fault).Round(time.Millisecond), firstRenewal.Sub(fault).Round(time.Millisecond),
				time.Since(fault).Round(time.Millisecond), ttl)

			if tc.signal == syscall.SIGSTOP {
				// Keep-alives sent to the paused node wait in its socket and
				// are answered the moment it wakes up, when its deadlines
				// have all passed and it may not know yet that it was
				// deposed: it must not tell their holder that the lease is
				// gone.
				queued := make(chan error, 8)
				for range cap(queued) {
					go func() {
						kctx, cancel := context.WithTimeout(ctx, 20*time.Second)
						defer cancel()
						_, err := raw.KeepAlive(kctx, &metadatapb.KeepAliveRequest{Id: int64(h.lease)})
						queued <- err
					}()
				}
				// The old leader wakes up as a follower of the new one and
				// revokes nothing: the lease lives on for another TTL.
				resumed := time.Now()
				if err := old.cmd.Process.Signal(syscall.SIGCONT); err != nil {
					t.Fatal(err)
				}
				for range cap(queued) {
					if err := <-queued; status.Code(err) == codes.NotFound {
						t.Errorf("the old leader answered a keep-alive it took while paused with %v", err)
					}
				}
				renewed := h.renewed.Load()
				waitFor(t, 30*time.Second, "five keep-alives after the old leader resumed", func() bool {
					if lost := h.lost(); lost != "" {
						t.Fatalf("the holder lost its lease %v after the old leader resumed: %s", time.Since(resumed).Round(time.Millisecond), lost)
					}
					return h.renewed.Load()-renewed >= 5
				})
				if st, err := c.Status(ctx, old.grpcAddr); err != nil || st.Leader {
					t.Fatalf("the resumed old leader: status %+v, %v; want a follower", st, err)
				}
			}
			w.stop()
			res, err := c.Range(ctx, "owners/", metadata.RangeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.KVs) != len(leaseHolderKeys) {
				t.Fatalf("%d of %d held keys are left", len(res.KVs), len(leaseHolderKeys))
			}
			for _, kv := range res.KVs {
				if kv.Lease != h.lease || kv.Version != 1 {
					t.Fatalf("%s: lease %d, version %d; want the holder's lease %d, never rewritten", kv.Key, kv.Lease, kv.Version, h.lease)
				}
			}
		})
	}
}

// dialRawMeta opens a plain gRPC connection to one metadata node (no
// leader following, no keepalive pings) and waits until it is up.
func dialRawMeta(ctx context.Context, t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	if _, err := metadatapb.NewMetadataClient(cc).Status(ctx, &metadatapb.StatusRequest{}); err != nil {
		t.Fatal(err)
	}
	return cc
}

// metaWriter puts one key over and over, each Put bounded by a few
// seconds, and keeps when each was acknowledged.
type metaWriter struct {
	t      testing.TB
	cancel context.CancelFunc
	done   sync.WaitGroup

	mu    sync.Mutex
	acked []ackedWrite
}

type ackedWrite struct{ sent, acked time.Time }

func startMetaWriter(ctx context.Context, t testing.TB, c *metadata.Client) *metaWriter {
	ctx, cancel := context.WithCancel(ctx)
	w := &metaWriter{t: t, cancel: cancel}
	w.done.Go(func() {
		for ctx.Err() == nil {
			sent := time.Now()
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := c.Put(pctx, "faults/writer", []byte("v"), metadata.AnyVersion)
			pcancel()
			if err == nil {
				w.mu.Lock()
				w.acked = append(w.acked, ackedWrite{sent, time.Now()})
				w.mu.Unlock()
			} else if ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Logf("writer: %v", err)
			}
		}
	})
	t.Cleanup(w.stop)
	return w
}

// firstAfter returns when the first write sent after at was acknowledged,
// or the zero time.
func (w *metaWriter) firstAfter(at time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.acked {
		if a.sent.After(at) {
			return a.acked
		}
	}
	return time.Time{}
}

func (w *metaWriter) stop() {
	w.cancel()
	w.done.Wait()
}

package metadata

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/magnetar-mq/magnetar/internal/diskspace"
)

// fakeDisk reports the free space the test sets; everything else is the
// real file system.
type fakeDisk struct {
	vfs.FS
	avail atomic.Uint64
}

func (d *fakeDisk) GetDiskUsage(string) (vfs.DiskUsage, error) {
	return vfs.DiskUsage{AvailBytes: d.avail.Load(), TotalBytes: 1 << 40}, nil
}

// Below the free space reserve the service refuses what adds data with
// ErrDiskFull (over gRPC too: RESOURCE_EXHAUSTED, and the client's error
// is ErrDiskFull) and writes nothing; reads, deletes, txns of deletes,
// lease keep-alives and revokes go on. Once space is freed writes work
// again.
func TestWritesThatAddDataAreRefusedBelowTheFreeSpaceReserveAndResumeAboveIt(t *testing.T) {
	t.Parallel()
	s := openSmall(t, defaultRingSize, 1000)
	disk := &fakeDisk{FS: vfs.Default}
	disk.avail.Store(1 << 30)
	s.disk = diskspace.Reserve{FS: disk, Dir: s.cfg.Dir, Min: 64 << 20}
	ctx := context.Background()
	c := dialInternal(t, s)

	for _, k := range []string{"a", "b", "c"} {
		if _, err := s.Put(ctx, k, []byte(k), AnyVersion); err != nil {
			t.Fatal(err)
		}
	}
	lease, err := s.Grant(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	held, err := s.Grant(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	rev := s.Status().Revision

	disk.avail.Store(64<<20 - 1)
	refused := []struct {
		name string
		do   func(Store) error
	}{
		{"Put", func(st Store) error { _, err := st.Put(ctx, "d", []byte("d"), AnyVersion); return err }},
		{"Put of an existing key", func(st Store) error { _, err := st.Put(ctx, "a", []byte("A"), 1); return err }},
		{"Grant", func(st Store) error { _, err := st.Grant(ctx, time.Minute); return err }},
		{"Txn with a put", func(st Store) error {
			_, err := st.Txn(ctx, TxnRequest{Then: []Op{DeleteOp("a"), PutOp("e", nil)}})
			return err
		}},
		{"Txn with a put in its else branch", func(st Store) error {
			_, err := st.Txn(ctx, TxnRequest{Compares: []Compare{KeyMissing("a")}, Else: []Op{PutOp("e", nil).WithLease(lease)}})
			return err
		}},
	}
	for _, r := range refused {
		for name, st := range map[string]Store{"service": s, "client": c} {
			err := r.do(st)
			if !errors.Is(err, ErrDiskFull) {
				t.Fatalf("%s through the %s on a full disk: err = %v, want ErrDiskFull", r.name, name, err)
			}
			if name == "client" && status.Code(err) != codes.ResourceExhausted {
				t.Fatalf("%s through the client: code %v, want ResourceExhausted", r.name, status.Code(err))
			}
		}
	}
	if got := s.Status().Revision; got != rev {
		t.Fatalf("refused writes moved the revision from %d to %d", rev, got)
	}

	// What writes nothing or frees space goes on.
	if kv, ok, err := c.Get(ctx, "a"); err != nil || !ok || string(kv.Value) != "a" {
		t.Fatalf("Get on a full disk = %+v, %v, %v", kv, ok, err)
	}
	if res, err := c.Range(ctx, "", RangeOptions{}); err != nil || len(res.KVs) != 3 {
		t.Fatalf("Range on a full disk = %d keys, %v; want 3", len(res.KVs), err)
	}
	if _, err := c.KeepAlive(ctx, lease); err != nil {
		t.Fatalf("KeepAlive on a full disk: %v", err)
	}
	if err := c.Delete(ctx, "a", AnyVersion); err != nil {
		t.Fatalf("Delete on a full disk: %v", err)
	}
	if _, err := c.Txn(ctx, TxnRequest{Then: []Op{DeleteOp("b")}}); err != nil {
		t.Fatalf("Txn of deletes on a full disk: %v", err)
	}
	if err := c.Revoke(ctx, held); err != nil {
		t.Fatalf("Revoke on a full disk: %v", err)
	}

	disk.avail.Store(64 << 20)
	if _, err := c.Put(ctx, "d", []byte("d"), 0); err != nil {
		t.Fatalf("Put once space is freed: %v", err)
	}
	if _, err := c.Grant(ctx, time.Minute); err != nil {
		t.Fatalf("Grant once space is freed: %v", err)
	}
}

// dialInternal serves s's gRPC API on a loopback port and dials it.
func dialInternal(t *testing.T, s *Service) *Client {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(GRPCServerOptions()...)
	NewGRPCServer(s).Register(srv)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-served
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, []string{lis.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

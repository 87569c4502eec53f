package tests

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/metadata"
)

// metaReserveFlags give a metadata node on a small disk a reserve that
// fits it: an 8 MiB memtable and 24 MiB kept free.
var metaReserveFlags = []string{"--memtable-size", "8388608", "--min-free-bytes", "25165824"}

// A `magnetar meta` node on a 128 MiB disk is filled through the metadata
// API with incompressible values. Before the disk is full the node refuses
// writes that add data with ErrDiskFull; it never crashes. Reads, deletes
// and lease keep-alives go on, the node restarts on the full disk, and
// once space is freed writes work again.
func TestFillingTheDiskThroughMetadataRefusesWritesAndNeverCrashes(t *testing.T) {
	skipIfShort(t)
	disk := mountTmpfs(t, "128m")
	ballast := writeBallast(t, disk, 16<<20)
	extra := append([]string{"--data-dir", filepath.Join(disk, "meta")}, metaReserveFlags...)
	nodes, peers := startRoleCluster(t, "meta", "m", 1, extra...)
	m := nodes[0]
	ctx := testContext(t, 120*time.Second)
	c := dialMeta(t, nodes)

	lease, err := c.Grant(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Txn(ctx, metadata.TxnRequest{Then: []metadata.Op{metadata.PutOp("owners/a", []byte("held")).WithLease(lease)}}); err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 256<<10)
	filled := 0
	// fill puts incompressible values until the node refuses one.
	fill := func() {
		t.Helper()
		for n := 0; ; n++ {
			_, _ = rand.Read(value)
			_, err := c.Put(ctx, fmt.Sprintf("fill/%05d", filled), value, metadata.AnyVersion)
			if err == nil {
				filled++
				continue
			}
			select {
			case <-m.exited:
				t.Fatalf("the node died after %d puts of 256 KiB: %v (put error %v)", n, m.cmd.ProcessState, err)
			default:
			}
			if !errors.Is(err, metadata.ErrDiskFull) {
				t.Fatalf("put %d: %v, want ErrDiskFull", n, err)
			}
			t.Logf("refused after %d puts of 256 KiB: %v", n, err)
			return
		}
	}
	fill()

	works := func(when string) {
		t.Helper()
		if _, err := c.KeepAlive(ctx, lease); err != nil {
			t.Fatalf("KeepAlive %s: %v", when, err)
		}
		if _, ok, err := c.Get(ctx, "owners/a"); err != nil || !ok {
			t.Fatalf("Get %s: %v, %v", when, ok, err)
		}
		if res, err := c.Range(ctx, "fill/", metadata.RangeOptions{Limit: 10}); err != nil || len(res.KVs) != 10 {
			t.Fatalf("Range %s: %d keys, %v", when, len(res.KVs), err)
		}
	}
	works("on the full disk")
	for i := range 20 {
		if err := c.Delete(ctx, fmt.Sprintf("fill/%05d", i), metadata.AnyVersion); err != nil {
			t.Fatalf("Delete on the full disk: %v", err)
		}
	}

	// A restart on the full disk: the node opens (flushing its WAL may
	// give back some space, which the fill takes again) and serves reads.
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-m.exited
	m.start(peers)
	m.waitReady()
	works("after a restart on the full disk")
	fill()

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "more", []byte("x"), metadata.AnyVersion); err != nil {
		t.Fatalf("Put once space was freed: %v", err)
	}
	select {
	case <-m.exited:
		t.Fatalf("the node died: %v", m.cmd.ProcessState)
	default:
	}
	if m.logContains("panic") {
		t.Fatal("the node logged a panic")
	}
}

package tests

import (
	"bufio"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/magnetar-mq/magnetar/metadata/catalog"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

// The documented run (docs/benchmarks.md) is -million.topics=1000000.
var millionTopics = flag.Int("million.topics", 1_000_000, "topics written by TestMillionTopicsInOneMetaNode")

const (
	millionBatch      = 1000 // topic creates per Txn
	millionWriters    = 4
	millionNamespaces = 100
)

// millionTopicName is the i-th topic: spread over 100 namespaces of one
// tenant, so that listing everything is in (namespace, topic) order, which
// is also i's order.
func millionTopicName(i, n int) catalog.TopicName {
	per := (n + millionNamespaces - 1) / millionNamespaces
	return catalog.TopicName{Tenant: "acme", Namespace: fmt.Sprintf("ns%02d", i/per), Topic: fmt.Sprintf("topic-%07d", i)}
}

// One real `magnetar meta` process holds a million topic rows: they are
// written through the gRPC client in batches of 1000 creates per Txn by
// four writers, then listed page by page, every one exactly once and in
// name order. The test logs the write and list times, the data
// directory's bytes per topic and the process's RSS; it asserts only the
// counts and the order (figures go to docs/benchmarks.md).
func TestMillionTopicsInOneMetaNode(t *testing.T) {
	skipIfShort(t)
	n := *millionTopics
	nodes := startMetaCluster(t, 1)
	node := nodes[0]
	c := dialMeta(t, nodes)
	cat := catalog.New(c)
	ctx := testContext(t, 10*time.Minute)

	// Write: batches are handed out in order from a shared counter.
	start := time.Now()
	var mu sync.Mutex
	nextBatch := 0
	g, gctx := errgroup.WithContext(ctx)
	for range millionWriters {
		g.Go(func() error {
			names := make([]catalog.TopicName, 0, millionBatch)
			vals := make([]*catalogpb.Topic, 0, millionBatch)
			for {
				mu.Lock()
				lo := nextBatch
				nextBatch += millionBatch
				mu.Unlock()
				if lo >= n {
					return nil
				}
				names, vals = names[:0], vals[:0]
				created := time.Now().UnixMilli()
				for i := lo; i < min(lo+millionBatch, n); i++ {
					names = append(names, millionTopicName(i, n))
					vals = append(vals, &catalogpb.Topic{Partitions: 1, CreatedUnixMs: created})
				}
				if _, err := cat.Topics.CreateBatch(gctx, names, vals); err != nil {
					return fmt.Errorf("batch at %d: %w", lo, err)
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	writeTime := time.Since(start)
	rssAfterWrite := vmRSS(t, node.cmd.Process.Pid)

	// List every topic, page by page.
	start = time.Now()
	count, pages := 0, 0
	var prev string
	page := catalog.Page{Limit: 1000}
	for {
		l, err := cat.Topics.List(ctx, catalog.NamespaceName{}, page)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, e := range l.Entries {
			name := e.Name.String()
			if name <= prev {
				t.Fatalf("listing out of order: %q after %q", name, prev)
			}
			if want := millionTopicName(count, n); e.Name != want {
				t.Fatalf("topic %d is %v, want %v", count, e.Name, want)
			}
			if e.Value.Partitions != 1 {
				t.Fatalf("%v has %d partitions, want 1", e.Name, e.Value.Partitions)
			}
			prev = name
			count++
		}
		if l.Next == "" {
			break
		}
		page.After = l.Next
	}
	listTime := time.Since(start)
	if count != n {
		t.Fatalf("listed %d topics, want %d", count, n)
	}

	du := diskUsage(t, node.dataDir)
	t.Logf("%d topics: write %v (%.0f topics/s, %d per Txn, %d writers), list %v (%d pages, %.0f topics/s)",
		n, writeTime.Round(time.Millisecond), float64(n)/writeTime.Seconds(), millionBatch, millionWriters,
		listTime.Round(time.Millisecond), pages, float64(n)/listTime.Seconds())
	t.Logf("data dir %.1f MiB on disk (%.0f bytes/topic); meta RSS %.1f MiB after writing, %.1f MiB after listing",
		float64(du)/(1<<20), float64(du)/float64(n), float64(rssAfterWrite)/(1<<20), float64(vmRSS(t, node.cmd.Process.Pid))/(1<<20))
}

// vmRSS reads a process's resident set size, in bytes, from /proc.
func vmRSS(t testing.TB, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Logf("reading RSS: %v", err)
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// diskUsage is what du reports: the blocks allocated to the files under dir.
func diskUsage(t testing.TB, dir string) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

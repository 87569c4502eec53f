package raftnode

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: every
// node is closed and every DB closed, so Raft's and Pebble's goroutines must
// all be gone.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is one node's durable state: a Pebble DB on an in-memory FS and a
// snapshot directory. Nodes can be opened on it, closed and reopened.
type env struct {
	t   *testing.T
	fs  *vfs.MemFS
	dir string
	db  *pebble.DB
}

func newEnv(t *testing.T) *env {
	e := &env{t: t, fs: vfs.NewCrashableMem(), dir: t.TempDir()}
	e.openDB()
	t.Cleanup(func() {
		if e.db != nil {
			_ = e.db.Close()
		}
	})
	return e
}

func (e *env) openDB() {
	e.t.Helper()
	db, err := pebble.Open("db", &pebble.Options{FS: e.fs, Logger: quietLogger{}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.db = db
}

// crash replaces the DB by what a machine crash would leave of it (only the
// data that was synced), after stopping the node n that was running on it.
func (e *env) crash(n *Node) {
	e.t.Helper()
	crashed := e.fs.CrashClone(vfs.CrashCloneCfg{})
	if err := n.Close(); err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.fs = crashed
	e.openDB()
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic("pebble fatal: " + format)
}

func (e *env) open(mod func(*Config)) (*Node, *counterFSM) {
	e.t.Helper()
	fsm, err := newCounterFSM(e.db)
	if err != nil {
		e.t.Fatal(err)
	}
	cfg := Config{Dir: e.dir, DB: e.db, LogPrefix: []byte("raft/"), FSM: fsm}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Open(ctx, cfg)
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	e.t.Cleanup(func() { _ = n.Close() })
	return n, fsm
}

func incr(t *testing.T, n *Node, name string) uint64 {
	t.Helper()
	resp, err := n.Apply(context.Background(), []byte("incr "+name))
	if err != nil {
		t.Fatalf("Apply(incr %s): %v", name, err)
	}
	return resp.(uint64)
}

func TestASingleNodeIsLeaderAfterOpenAndApplies(t *testing.T) {
	t.Parallel()
	n, fsm := newEnv(t).open(nil)
	if s := n.Raft().State(); s != raft.Leader {
		t.Fatalf("state after Open = %v, want Leader", s)
	}
	for want := uint64(1); want <= 3; want++ {
		if got := incr(t, n, "a"); got != want {
			t.Fatalf("incr a = %d, want %d", got, want)
		}
	}
	if got := fsm.count("a"); got != 3 {
		t.Fatalf("counter a in the DB = %d, want 3", got)
	}
}

func TestAnErrorResponseIsReturnedAsTheApplyError(t *testing.T) {
	t.Parallel()
	n, _ := newEnv(t).open(nil)
	resp, err := n.Apply(context.Background(), []byte("fail"))
	if err == nil || !strings.Contains(err.Error(), "command failed") || resp != nil {
		t.Fatalf("Apply(fail) = %v, %v; want nil and the FSM's error", resp, err)
	}
}

func TestApplyWithAnEndedContextReturnsItsError(t *testing.T) {
	t.Parallel()
	n, _ := newEnv(t).open(nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := n.Apply(ctx, []byte("incr a")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply with cancelled ctx: err = %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := n.Apply(ctx, []byte("incr a")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Apply with expired ctx: err = %v, want context.DeadlineExceeded", err)
	}
}

func TestApplyWithACancellableContextWaitsForTheResponse(t *testing.T) {
	t.Parallel()
	n, _ := newEnv(t).open(nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				if _, err := n.Apply(ctx, []byte("incr c")); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := incr(t, n, "c"); got != 81 {
		t.Fatalf("after 80 concurrent increments the next one returned %d, want 81", got)
	}
}

func TestApplyAfterCloseReturnsErrClosed(t *testing.T) {
	t.Parallel()
	n, _ := newEnv(t).open(nil)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, ctx := range []context.Context{context.Background(), t.Context()} {
		if _, err := n.Apply(ctx, []byte("incr a")); !errors.Is(err, ErrClosed) {
			t.Fatalf("Apply after Close: err = %v, want ErrClosed", err)
		}
	}
}

func TestOpenWithAnEndedContextFailsAndCleansUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	fsm, err := newCounterFSM(e.db)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Open(ctx, Config{Dir: e.dir, DB: e.db, LogPrefix: []byte("raft/"), FSM: fsm})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Open with cancelled ctx: err = %v, want context.Canceled", err)
	}
	// goleak in TestMain checks that the half-started node was shut down.
}

func TestReopeningReplaysTheLogWithoutApplyingAnEntryTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n, _ := e.open(nil)
	for range 20 {
		incr(t, n, "a")
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	// Raft replays every entry after its last snapshot (there is none); the
	// FSM must skip all of them, or the non-idempotent counter would be 40.
	n, fsm := e.open(nil)
	if got := fsm.count("a"); got != 20 {
		t.Fatalf("counter after reopen = %d, want 20", got)
	}
	if _, applies, _ := fsm.stats(); applies != 0 {
		t.Fatalf("reopened FSM applied %d entries, want 0 (all were applied before)", applies)
	}
	if got := incr(t, n, "a"); got != 21 {
		t.Fatalf("incr after reopen = %d, want 21", got)
	}
}

func TestACrashThatLosesUnsyncedFSMWritesIsRepairedByReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n, _ := e.open(nil)
	for range 20 {
		incr(t, n, "a")
	}
	// The last FSM write (NoSync) comes after the last synced log write, so a
	// crash loses it while the log entry survives.
	e.crash(n)

	_, fsm := e.open(nil)
	if got := fsm.count("a"); got != 20 {
		t.Fatalf("counter after crash and reopen = %d, want 20", got)
	}
	if _, applies, _ := fsm.stats(); applies == 0 {
		t.Fatalf("no entry was re-applied after the crash: the test did not exercise replay")
	}
}

func TestSnapshotTruncatesTheLogAndStateSurvivesAReopen(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const trailing = 5
	withTrailing := func(c *Config) { c.TrailingLogs = trailing }
	n, fsm := e.open(withTrailing)
	for range 50 {
		incr(t, n, "a")
	}
	if err := n.Raft().Snapshot().Error(); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if _, _, snaps := fsm.stats(); snaps != 1 {
		t.Fatalf("FSM.Snapshot called %d times, want 1", snaps)
	}
	first, _ := n.logs.FirstIndex()
	last, _ := n.logs.LastIndex()
	if last-first+1 != trailing {
		t.Fatalf("log after snapshot holds [%d, %d], want the last %d entries", first, last, trailing)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	n, fsm = e.open(withTrailing)
	if got := fsm.count("a"); got != 50 {
		t.Fatalf("counter after reopen = %d, want 50", got)
	}
	if got := incr(t, n, "a"); got != 51 {
		t.Fatalf("incr after reopen = %d, want 51", got)
	}
	if snap := n.Raft().Stats()["last_snapshot_index"]; snap == "0" {
		t.Fatalf("reopened node does not know its snapshot: last_snapshot_index = %s", snap)
	}
}

func TestANodeKeepsItsLogInTheCallersOwnStores(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	store := raft.NewInmemStore() // kept across the reopen, as a WAL on disk would be
	own := func(c *Config) {
		c.DB, c.LogPrefix = nil, nil
		c.LogStore, c.StableStore = store, store
	}
	n, _ := e.open(own)
	for range 10 {
		incr(t, n, "a")
	}
	if last, _ := store.LastIndex(); last < 10 {
		t.Fatalf("the caller's log store ends at index %d, want the 10 commands in it", last)
	}
	if term, _ := store.GetUint64([]byte("CurrentTerm")); term == 0 {
		t.Fatal("the caller's stable store holds no current term")
	}
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: []byte("raft/"), UpperBound: []byte("raft0")})
	if err != nil {
		t.Fatal(err)
	}
	if it.First() {
		t.Errorf("the DB holds Raft key %q although the caller supplied its own stores", it.Key())
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	n, fsm := e.open(own)
	if _, applies, _ := fsm.stats(); applies != 0 {
		t.Fatalf("reopened FSM applied %d entries, want 0 (all were applied before)", applies)
	}
	if got := incr(t, n, "a"); got != 11 {
		t.Fatalf("incr after reopen = %d, want 11", got)
	}
}

func TestConfigNamesExactlyOneHomeForTheLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	fsm, err := newCounterFSM(e.db)
	if err != nil {
		t.Fatal(err)
	}
	store := raft.NewInmemStore()
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"a DB and a log prefix", func(c *Config) { c.DB, c.LogPrefix = e.db, []byte("raft/") }, true},
		{"a log store and a stable store", func(c *Config) { c.LogStore, c.StableStore = store, store }, true},
		{"nothing", func(*Config) {}, false},
		{"a DB without a log prefix", func(c *Config) { c.DB = e.db }, false},
		{"a log store without a stable store", func(c *Config) { c.LogStore = store }, false},
		{"a stable store without a log store", func(c *Config) { c.StableStore = store }, false},
		{"both a DB and own stores", func(c *Config) {
			c.DB, c.LogPrefix = e.db, []byte("raft/")
			c.LogStore, c.StableStore = store, store
		}, false},
	} {
		cfg := Config{Dir: e.dir, FSM: fsm}
		tc.mod(&cfg)
		cfg.EnsureDefaults()
		err := cfg.Validate()
		if tc.ok && err != nil {
			t.Errorf("%s: Validate = %v, want nil", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Validate = %v, want ErrInvalidConfig", tc.name, err)
		}
	}
}

func TestRaftLogsGoToTheSlogLoggerAtTheConfiguredLevel(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var buf strings.Builder
	h := slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug - 4})
	a := newHCLogAdapter(slog.New(h), hclog.Warn)
	a.Info("hidden")
	a.Named("snap").Warn("shown", "k", "v")
	a.StandardLogger(nil).Print("[WARN] also hidden at Info")
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if strings.Contains(out, "hidden") || !strings.Contains(out, "shown") || !strings.Contains(out, "logger=raft.snap") || !strings.Contains(out, "k=v") {
		t.Fatalf("log output = %q", out)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestCloseDuringConcurrentAppliesNeitherHangsNorLosesAnAcknowledgedCommand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n, _ := e.open(nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := 0
	for i := range 8 {
		ctx := context.Background()
		if i%2 == 1 {
			ctx = t.Context() // cancellable: exercises the waiting goroutine
		}
		wg.Go(func() {
			for {
				_, err := n.Apply(ctx, []byte("incr x"))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Apply: %v", err)
					return
				}
				mu.Lock()
				acked++
				mu.Unlock()
			}
		})
	}
	// Let some commands through, then close under load.
	for {
		mu.Lock()
		a := acked
		mu.Unlock()
		if a >= 50 {
			break
		}
		if err := n.Barrier(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	// Every acknowledged increment is in the state after a reopen.
	_, fsm := e.open(nil)
	if got := fsm.count("x"); got != uint64(acked) {
		t.Fatalf("counter after reopen = %d, want %d acknowledged increments", got, acked)
	}
}

package metadatatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/metadata"
)

// Option configures RunConformance.
type Option func(*suite)

// Reopen gives the suite a way to close a store and open the same data
// again; with it, the suite checks that data survives a restart.
func Reopen(reopen func(t *testing.T, s metadata.Store) metadata.Store) Option {
	return func(c *suite) { c.reopen = reopen }
}

// HistoryRevisions tells the suite that the stores it gets keep the events
// of (at least, and about) the last n revisions; with it, the suite checks
// that a Watch from older revisions returns metadata.ErrCompacted.
func HistoryRevisions(n int64) Option {
	return func(c *suite) { c.history = n }
}

type suite struct {
	newStore func(t *testing.T) metadata.Store
	reopen   func(t *testing.T, s metadata.Store) metadata.Store
	history  int64
	ttl      time.Duration
}

// RunConformance runs the behaviour every metadata.Store must have against
// stores made by newStore, one fresh store per subtest. newStore should
// arrange for the store to be closed at the end of the test; Close must be
// idempotent, since some subtests close the store themselves.
func RunConformance(t *testing.T, newStore func(t *testing.T) metadata.Store, opts ...Option) {
	c := &suite{newStore: newStore}
	for _, o := range opts {
		o(c)
	}
	tests := []conformanceTest{
		{"Get of a missing key reports ok=false", testGetMissing},
		{"Put with expected version 0 creates the key at version 1", testCreate},
		{"Put with expected version 0 fails on an existing key", testCreateExisting},
		{"Put with the current version updates; a stale one fails and changes nothing", testUpdate},
		{"Put with a version on a missing key fails", testUpdateMissing},
		{"Put with AnyVersion creates and overwrites", testPutAny},
		{"Put and Delete reject an empty key", testEmptyKey},
		{"Delete with the current version removes the key; a wrong one fails", testDelete},
		{"Delete of a missing key is ErrNotFound with a version, a no-op with AnyVersion", testDeleteMissing},
		{"A deleted and re-created key starts again at version 1", testRecreate},
		{"Each change takes the next revision and failed or no-op writes take none", testRevisions},
		{"Stored values are copies of the caller's slices", testValueCopies},
		{"Range lists the keys under a prefix in order at the current revision", testRange},
		{"Range pages with StartAfter and Limit", testRangePaging},
		{"Watch from 0 streams later changes under the prefix only", testWatchLive},
		{"Watch from a revision replays what came after it, then goes live", testWatchResume},
		{"Watch from a future revision waits for it", testWatchFuture},
		{"A watch channel closes when its context ends", testWatchCtx},
		{"Close closes watch channels and later calls return ErrClosed", testClose},
		{"Of concurrent creates of one key exactly one wins", testCreateRace},
		{"Of concurrent updates from one version exactly one wins", testUpdateRace},
		{"A slow watcher holds up no writer and misses no event", c.testSlowWatcher},
	}
	tests = append(tests, txnTests()...)
	tests = append(tests, c.leaseTests()...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, c.newStore(t)) })
	}
	if c.reopen != nil {
		t.Run("Keys, versions, revisions and history survive close and reopen", c.testReopen)
		t.Run("Leases and their keys survive close and reopen, then expire", c.testLeaseReopen)
	}
	if c.history > 0 {
		t.Run("Watch from a compacted revision returns ErrCompacted", c.testCompacted)
	}
}

// ctxT returns a context that ends with the test; the 30-second bound only
// turns a hang into a failure, it asserts no timing.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustPut(t *testing.T, s metadata.Store, key, val string, expected int64) metadata.KV {
	t.Helper()
	kv, err := s.Put(ctxT(t), key, []byte(val), expected)
	if err != nil {
		t.Fatalf("Put(%q, %q, %d): %v", key, val, expected, err)
	}
	return kv
}

func mustGet(t *testing.T, s metadata.Store, key string) (metadata.KV, bool) {
	t.Helper()
	kv, ok, err := s.Get(ctxT(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return kv, ok
}

func revision(t *testing.T, s metadata.Store) int64 {
	t.Helper()
	res, err := s.Range(ctxT(t), "", metadata.RangeOptions{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	return res.Revision
}

func sameKV(a, b metadata.KV) bool {
	return a.Key == b.Key && bytes.Equal(a.Value, b.Value) && a.Version == b.Version &&
		a.CreateRevision == b.CreateRevision && a.ModRevision == b.ModRevision
}

func assertKV(t *testing.T, s metadata.Store, want metadata.KV) {
	t.Helper()
	got, ok := mustGet(t, s, want.Key)
	if !ok || !sameKV(got, want) {
		t.Fatalf("Get(%q) = %+v, %v; want %+v", want.Key, got, ok, want)
	}
}

func assertMissing(t *testing.T, s metadata.Store, key string) {
	t.Helper()
	if kv, ok := mustGet(t, s, key); ok {
		t.Fatalf("Get(%q) = %+v, want missing", key, kv)
	}
}

func testGetMissing(t *testing.T, s metadata.Store) {
	assertMissing(t, s, "nope")
}

func testCreate(t *testing.T, s metadata.Store) {
	kv := mustPut(t, s, "a", "1", 0)
	if kv.Key != "a" || string(kv.Value) != "1" || kv.Version != 1 || kv.CreateRevision <= 0 || kv.ModRevision != kv.CreateRevision {
		t.Fatalf("created KV = %+v", kv)
	}
	assertKV(t, s, kv)
}

func testCreateExisting(t *testing.T, s metadata.Store) {
	kv := mustPut(t, s, "a", "1", 0)
	if _, err := s.Put(ctxT(t), "a", []byte("2"), 0); !errors.Is(err, metadata.ErrVersionMismatch) {
		t.Fatalf("second create: err = %v, want ErrVersionMismatch", err)
	}
	assertKV(t, s, kv)
}

func testUpdate(t *testing.T, s metadata.Store) {
	v1 := mustPut(t, s, "a", "1", 0)
	v2 := mustPut(t, s, "a", "2", 1)
	if v2.Version != 2 || v2.CreateRevision != v1.CreateRevision || v2.ModRevision <= v1.ModRevision {
		t.Fatalf("updated KV = %+v after %+v", v2, v1)
	}
	if _, err := s.Put(ctxT(t), "a", []byte("stale"), 1); !errors.Is(err, metadata.ErrVersionMismatch) {
		t.Fatalf("update with stale version: err = %v, want ErrVersionMismatch", err)
	}
	assertKV(t, s, v2)
}

func testUpdateMissing(t *testing.T, s metadata.Store) {
	if _, err := s.Put(ctxT(t), "a", []byte("x"), 3); !errors.Is(err, metadata.ErrVersionMismatch) {
		t.Fatalf("update of a missing key: err = %v, want ErrVersionMismatch", err)
	}
	assertMissing(t, s, "a")
}

func testPutAny(t *testing.T, s metadata.Store) {
	v1 := mustPut(t, s, "a", "1", metadata.AnyVersion)
	v2 := mustPut(t, s, "a", "2", metadata.AnyVersion)
	if v1.Version != 1 || v2.Version != 2 || v2.CreateRevision != v1.CreateRevision {
		t.Fatalf("unconditional puts gave %+v then %+v", v1, v2)
	}
	assertKV(t, s, v2)
}

func testEmptyKey(t *testing.T, s metadata.Store) {
	if _, err := s.Put(ctxT(t), "", []byte("x"), metadata.AnyVersion); !errors.Is(err, metadata.ErrInvalidKey) {
		t.Fatalf("Put(\"\"): err = %v, want ErrInvalidKey", err)
	}
	if err := s.Delete(ctxT(t), "", metadata.AnyVersion); !errors.Is(err, metadata.ErrInvalidKey) {
		t.Fatalf("Delete(\"\"): err = %v, want ErrInvalidKey", err)
	}
}

func testDelete(t *testing.T, s metadata.Store) {
	kv := mustPut(t, s, "a", "1", 0)
	mustPut(t, s, "a", "2", 1)
	if err := s.Delete(ctxT(t), "a", 1); !errors.Is(err, metadata.ErrVersionMismatch) {
		t.Fatalf("Delete with stale version: err = %v, want ErrVersionMismatch", err)
	}
	if err := s.Delete(ctxT(t), "a", 0); !errors.Is(err, metadata.ErrVersionMismatch) {
		t.Fatalf("Delete with version 0 of an existing key: err = %v, want ErrVersionMismatch", err)
	}
	if err := s.Delete(ctxT(t), "a", 2); err != nil {
		t.Fatalf("Delete with current version: %v", err)
	}
	assertMissing(t, s, kv.Key)
	mustPut(t, s, "b", "1", 0)
	if err := s.Delete(ctxT(t), "b", metadata.AnyVersion); err != nil {
		t.Fatalf("unconditional Delete: %v", err)
	}
	assertMissing(t, s, "b")
}

func testDeleteMissing(t *testing.T, s metadata.Store) {
	for _, v := range []int64{0, 1} {
		if err := s.Delete(ctxT(t), "a", v); !errors.Is(err, metadata.ErrNotFound) {
			t.Fatalf("Delete(missing, %d): err = %v, want ErrNotFound", v, err)
		}
	}
	if err := s.Delete(ctxT(t), "a", metadata.AnyVersion); err != nil {
		t.Fatalf("Delete(missing, AnyVersion): err = %v, want nil", err)
	}
}

func testRecreate(t *testing.T, s metadata.Store) {
	first := mustPut(t, s, "a", "1", 0)
	mustPut(t, s, "a", "2", 1)
	if err := s.Delete(ctxT(t), "a", 2); err != nil {
		t.Fatal(err)
	}
	again := mustPut(t, s, "a", "3", 0)
	if again.Version != 1 || again.CreateRevision <= first.CreateRevision || again.CreateRevision != again.ModRevision {
		t.Fatalf("re-created KV = %+v, first one was %+v", again, first)
	}
}

func testRevisions(t *testing.T, s metadata.Store) {
	rev := revision(t, s)
	step := func(what string, kvRev int64, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		rev++
		if kvRev != 0 && kvRev != rev {
			t.Fatalf("%s: revision %d, want %d", what, kvRev, rev)
		}
		if got := revision(t, s); got != rev {
			t.Fatalf("after %s the store revision is %d, want %d", what, got, rev)
		}
	}
	kv, err := s.Put(ctxT(t), "a", []byte("1"), 0)
	step("create a", kv.ModRevision, err)
	kv, err = s.Put(ctxT(t), "b", []byte("1"), 0)
	step("create b", kv.ModRevision, err)
	kv, err = s.Put(ctxT(t), "a", []byte("2"), 1)
	step("update a", kv.ModRevision, err)

	// Failed and no-op writes leave the revision alone.
	_, _ = s.Put(ctxT(t), "a", []byte("x"), 7)
	_ = s.Delete(ctxT(t), "a", 7)
	_ = s.Delete(ctxT(t), "missing", metadata.AnyVersion)
	if got := revision(t, s); got != rev {
		t.Fatalf("after failed writes the store revision is %d, want %d", got, rev)
	}
	step("delete b", 0, s.Delete(ctxT(t), "b", 1))
}

func testValueCopies(t *testing.T, s metadata.Store) {
	buf := []byte("original")
	if _, err := s.Put(ctxT(t), "a", buf, 0); err != nil {
		t.Fatal(err)
	}
	copy(buf, "CHANGED!")
	got, _ := mustGet(t, s, "a")
	if string(got.Value) != "original" {
		t.Fatalf("Get after the caller reused its buffer = %q, want %q", got.Value, "original")
	}
	copy(got.Value, "CHANGED!")
	again, _ := mustGet(t, s, "a")
	if string(again.Value) != "original" {
		t.Fatalf("Get after the caller changed a returned value = %q, want %q", again.Value, "original")
	}
}

func keysOf(kvs []metadata.KV) []string {
	var out []string
	for _, kv := range kvs {
		out = append(out, kv.Key)
	}
	return out
}

func testRange(t *testing.T, s metadata.Store) {
	want := map[string]metadata.KV{}
	for _, k := range []string{"t/b", "t/a", "t/c/1", "u/a", "t", "s/z"} {
		want[k] = mustPut(t, s, k, "v-"+k, 0)
	}
	res, err := s.Range(ctxT(t), "t/", metadata.RangeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(keysOf(res.KVs)); got != "[t/a t/b t/c/1]" || res.More {
		t.Fatalf("Range(t/) = %s more=%v, want [t/a t/b t/c/1] more=false", got, res.More)
	}
	for _, kv := range res.KVs {
		if !sameKV(kv, want[kv.Key]) {
			t.Fatalf("Range returned %+v, Put returned %+v", kv, want[kv.Key])
		}
	}
	if res.Revision != want["s/z"].ModRevision {
		t.Fatalf("Range revision = %d, want the last write's %d", res.Revision, want["s/z"].ModRevision)
	}
	all, err := s.Range(ctxT(t), "", metadata.RangeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(keysOf(all.KVs)); got != "[s/z t t/a t/b t/c/1 u/a]" {
		t.Fatalf("Range(\"\") = %s", got)
	}
	none, err := s.Range(ctxT(t), "v/", metadata.RangeOptions{})
	if err != nil || len(none.KVs) != 0 || none.More {
		t.Fatalf("Range(v/) = %+v, %v; want nothing", none, err)
	}
}

func testRangePaging(t *testing.T, s metadata.Store) {
	for i := range 10 {
		mustPut(t, s, fmt.Sprintf("p/%02d", i), "v", 0)
	}
	mustPut(t, s, "q/00", "v", 0)
	var pages [][]string
	after := ""
	for {
		res, err := s.Range(ctxT(t), "p/", metadata.RangeOptions{StartAfter: after, Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, keysOf(res.KVs))
		if !res.More {
			break
		}
		after = res.KVs[len(res.KVs)-1].Key
	}
	if got := fmt.Sprint(pages); got != "[[p/00 p/01 p/02 p/03] [p/04 p/05 p/06 p/07] [p/08 p/09]]" {
		t.Fatalf("pages = %s", got)
	}
	exact, err := s.Range(ctxT(t), "p/", metadata.RangeOptions{StartAfter: "p/05", Limit: 4})
	if err != nil || fmt.Sprint(keysOf(exact.KVs)) != "[p/06 p/07 p/08 p/09]" || exact.More {
		t.Fatalf("a page that ends exactly at the last key = %v more=%v, %v; want more=false", keysOf(exact.KVs), exact.More, err)
	}
	for _, tc := range []struct{ after, want string }{
		{"a", "[p/00 p/01]"},  // before the prefix: from its start
		{"p/", "[p/00 p/01]"}, // the prefix itself
		{"p/09", "[]"},        // the last key
		{"z", "[]"},           // after the prefix
	} {
		res, err := s.Range(ctxT(t), "p/", metadata.RangeOptions{StartAfter: tc.after, Limit: 2})
		if err != nil || fmt.Sprint(keysOf(res.KVs)) != tc.want {
			t.Fatalf("Range(p/, StartAfter %q) = %v, %v; want %s", tc.after, keysOf(res.KVs), err, tc.want)
		}
	}
}

// next receives one event, failing the test if the channel closes or nothing
// comes (the bound turns a hang into a failure).
func next(t *testing.T, ch <-chan metadata.Event) metadata.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed early")
		}
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("no watch event")
	}
	return metadata.Event{}
}

func assertEvent(t *testing.T, ch <-chan metadata.Event, typ metadata.EventType, want metadata.KV) {
	t.Helper()
	ev := next(t, ch)
	if ev.Type != typ || !sameKV(ev.KV, want) {
		t.Fatalf("event = %v %+v, want %v %+v", ev.Type, ev.KV, typ, want)
	}
}

// assertClosed waits for ch to be closed, draining nothing: any event left is
// a failure.
func assertClosed(t *testing.T, ch <-chan metadata.Event) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if ok {
			t.Fatalf("got event %+v, want the channel closed", ev)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("watch channel not closed")
	}
}

func testWatchLive(t *testing.T, s metadata.Store) {
	mustPut(t, s, "w/before", "x", 0)
	ch, err := s.Watch(ctxT(t), "w/", 0)
	if err != nil {
		t.Fatal(err)
	}
	created := mustPut(t, s, "w/a", "1", 0)
	mustPut(t, s, "other/a", "1", 0)
	updated := mustPut(t, s, "w/a", "2", 1)
	if err := s.Delete(ctxT(t), "w/a", 2); err != nil {
		t.Fatal(err)
	}
	deleted := metadata.KV{Key: "w/a", ModRevision: updated.ModRevision + 1}
	sentinel := mustPut(t, s, "w/z", "end", 0)

	assertEvent(t, ch, metadata.EventPut, created)
	assertEvent(t, ch, metadata.EventPut, updated)
	assertEvent(t, ch, metadata.EventDelete, deleted)
	assertEvent(t, ch, metadata.EventPut, sentinel) // nothing else in between
}

func testWatchResume(t *testing.T, s metadata.Store) {
	mustPut(t, s, "w/a", "1", 0)
	from := revision(t, s)
	b := mustPut(t, s, "w/b", "1", 0)
	mustPut(t, s, "x/a", "1", 0)
	a2 := mustPut(t, s, "w/a", "2", 1)

	ch, err := s.Watch(ctxT(t), "w/", from)
	if err != nil {
		t.Fatal(err)
	}
	assertEvent(t, ch, metadata.EventPut, b)
	assertEvent(t, ch, metadata.EventPut, a2)
	live := mustPut(t, s, "w/c", "1", 0)
	assertEvent(t, ch, metadata.EventPut, live)
}

func testWatchFuture(t *testing.T, s metadata.Store) {
	ch, err := s.Watch(ctxT(t), "w/", revision(t, s)+2)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "w/1", "skipped", 0)
	mustPut(t, s, "w/2", "skipped", 0)
	third := mustPut(t, s, "w/3", "seen", 0)
	assertEvent(t, ch, metadata.EventPut, third)
}

func testWatchCtx(t *testing.T, s metadata.Store) {
	ctx, cancel := context.WithCancel(ctxT(t))
	ch, err := s.Watch(ctx, "w/", 0)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	for range ch { // events may still be buffered; the channel must close
	}
	if _, err := s.Watch(ctx, "w/", 0); err == nil {
		t.Fatal("Watch with an ended context succeeded")
	}
}

func testClose(t *testing.T, s metadata.Store) {
	mustPut(t, s, "a", "1", 0)
	ch, err := s.Watch(ctxT(t), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	assertClosed(t, ch)
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := ctxT(t)
	if _, _, err := s.Get(ctx, "a"); !errors.Is(err, metadata.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if _, err := s.Range(ctx, "", metadata.RangeOptions{}); !errors.Is(err, metadata.ErrClosed) {
		t.Fatalf("Range after Close: %v", err)
	}
	if _, err := s.Put(ctx, "a", nil, metadata.AnyVersion); !errors.Is(err, metadata.ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
	if err := s.Delete(ctx, "a", metadata.AnyVersion); !errors.Is(err, metadata.ErrClosed) {
		t.Fatalf("Delete after Close: %v", err)
	}
	if _, err := s.Watch(ctx, "", 0); !errors.Is(err, metadata.ErrClosed) {
		t.Fatalf("Watch after Close: %v", err)
	}
}

// parallelPuts creates n keys "<prefix><i>" from 8 goroutines.
func parallelPuts(t *testing.T, s metadata.Store, prefix string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if _, err := s.Put(ctxT(t), fmt.Sprintf("%s%05d", prefix, i), []byte("v"), 0); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

func (c *suite) testSlowWatcher(t *testing.T, s metadata.Store) {
	n := 3000
	if c.history > 0 {
		n = min(n, int(c.history)) // a watcher further behind is closed
	}
	from := revision(t, s)
	ch, err := s.Watch(ctxT(t), "slow/", 0)
	if err != nil {
		t.Fatal(err)
	}
	// Nobody reads ch while all the writes go through.
	parallelPuts(t, s, "slow/", n)
	seen := map[string]bool{}
	for i := range n {
		ev := next(t, ch)
		if want := from + int64(i) + 1; ev.KV.ModRevision != want {
			t.Fatalf("event %d has revision %d, want %d (events must be in order, none missing)", i, ev.KV.ModRevision, want)
		}
		seen[ev.KV.Key] = true
	}
	if len(seen) != n {
		t.Fatalf("saw %d distinct keys, want %d", len(seen), n)
	}
}

func testCreateRace(t *testing.T, s metadata.Store) {
	const racers = 16
	var wg sync.WaitGroup
	errs := make(chan error, racers)
	for i := range racers {
		wg.Go(func() {
			_, err := s.Put(ctxT(t), "lock", fmt.Appendf(nil, "owner-%d", i), 0)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	assertOneWinner(t, errs)
	kv, _ := mustGet(t, s, "lock")
	if kv.Version != 1 {
		t.Fatalf("lock at version %d after racing creates, want 1", kv.Version)
	}
}

func testUpdateRace(t *testing.T, s metadata.Store) {
	const racers = 16
	mustPut(t, s, "counter", "0", 0)
	var wg sync.WaitGroup
	errs := make(chan error, racers)
	for i := range racers {
		wg.Go(func() {
			_, err := s.Put(ctxT(t), "counter", fmt.Appendf(nil, "%d", i), 1)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	assertOneWinner(t, errs)
	kv, _ := mustGet(t, s, "counter")
	if kv.Version != 2 {
		t.Fatalf("counter at version %d after racing updates, want 2", kv.Version)
	}
}

func assertOneWinner(t *testing.T, errs <-chan error) {
	t.Helper()
	wins := 0
	for err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, metadata.ErrVersionMismatch):
			t.Fatalf("a loser got %v, want ErrVersionMismatch", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d racers won, want exactly 1", wins)
	}
}

func (c *suite) testReopen(t *testing.T) {
	s := c.newStore(t)
	a := mustPut(t, s, "a", "1", 0)
	a = mustPut(t, s, "a", "2", a.Version)
	b := mustPut(t, s, "b", "1", 0)
	if err := s.Delete(ctxT(t), "b", b.Version); err != nil {
		t.Fatal(err)
	}
	rev := revision(t, s)

	s = c.reopen(t, s)
	assertKV(t, s, a)
	assertMissing(t, s, "b")
	if got := revision(t, s); got != rev {
		t.Fatalf("revision after reopen = %d, want %d", got, rev)
	}
	// The history survived too: a watch can resume from before the restart.
	ch, err := s.Watch(ctxT(t), "", a.ModRevision-1)
	if err != nil {
		t.Fatal(err)
	}
	assertEvent(t, ch, metadata.EventPut, a)
	assertEvent(t, ch, metadata.EventPut, b)
	assertEvent(t, ch, metadata.EventDelete, metadata.KV{Key: "b", ModRevision: rev})
	// And new writes continue the revisions.
	if c := mustPut(t, s, "c", "1", 0); c.ModRevision != rev+1 {
		t.Fatalf("first write after reopen at revision %d, want %d", c.ModRevision, rev+1)
	}
}

func (c *suite) testCompacted(t *testing.T) {
	s := c.newStore(t)
	parallelPuts(t, s, "h/", int(3*c.history))
	rev := revision(t, s)
	if _, err := s.Watch(ctxT(t), "", 1); !errors.Is(err, metadata.ErrCompacted) {
		t.Fatalf("Watch from revision 1 of %d with a history of %d: err = %v, want ErrCompacted", rev, c.history, err)
	}
	// The last c.history revisions are still there.
	from := rev - c.history
	ch, err := s.Watch(ctxT(t), "", from)
	if err != nil {
		t.Fatalf("Watch from %d (within the kept history): %v", from, err)
	}
	for i := range c.history {
		if ev := next(t, ch); ev.KV.ModRevision != from+i+1 {
			t.Fatalf("resumed event %d has revision %d, want %d", i, ev.KV.ModRevision, from+i+1)
		}
	}
}

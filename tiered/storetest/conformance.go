package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/magnetar-mq/magnetar/tiered"
)

// LargeObjectBytes is the size of the large object the suite streams
// through Put: above 16 MiB, so an S3Store with its default part size
// uploads it in several parts.
const LargeObjectBytes = 20<<20 + 123

// RunConformance runs the contract of tiered.ObjectStore against stores
// made by newStore, each test on a store of its own (newStore is called
// once or more per subtest, from parallel subtests). Two stores it makes
// must not see each other's objects: a fresh directory, or an S3 prefix of
// their own.
func RunConformance(t *testing.T, newStore func(t *testing.T) tiered.ObjectStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, s tiered.ObjectStore)
	}{
		{"a put object reads back whole with its size", testRoundTrip},
		{"an empty object is stored and read", testEmptyObject},
		{"ranges read the start, middle and end, and stop at the end", testRanges},
		{"a put replaces the object", testOverwrite},
		{"a reader that ends early stores nothing and keeps the old object", testShortReader},
		{"a cancelled put stores nothing", testCancelledPut},
		{"an absent object is not found", testNotFound},
		{"deleting an absent object succeeds", testDelete},
		{"list returns keys in byte order, filtered by prefix", testListOrderAndPrefix},
		{"list stops at the callback's error", testListStops},
		{"list pages through more keys than one S3 page", testListPages},
		{"concurrent puts of different keys all land", testConcurrentPuts},
		{"a large object is streamed in and out", testLargeObject},
		{"invalid keys are refused and valid odd keys work", testKeys},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}
	t.Run("two stores do not see each other's objects", func(t *testing.T) {
		t.Parallel()
		a, b := newStore(t), newStore(t)
		put(t, a, "shared/key", []byte("a's"))
		if _, err := b.Stat(t.Context(), "shared/key"); !errors.Is(err, tiered.ErrNotFound) {
			t.Fatalf("Stat in the other store: %v, want ErrNotFound", err)
		}
		if keys := list(t, b, ""); len(keys) != 0 {
			t.Fatalf("the other store lists %q", keys)
		}
	})
}

// data returns n deterministic pseudo-random bytes, different per seed.
func data(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8(seedOf(seed)).Read(b)
	return b
}

func seedOf(seed uint64) [32]byte {
	var s [32]byte
	copy(s[:], fmt.Sprint(seed))
	return s
}

func put(t *testing.T, s tiered.ObjectStore, key string, b []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(b), err)
	}
}

func get(t *testing.T, s tiered.ObjectStore, key string, off, n int64) []byte {
	t.Helper()
	rc, err := s.GetRange(t.Context(), key, off, n)
	if err != nil {
		t.Fatalf("GetRange(%q, %d, %d): %v", key, off, n, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("GetRange(%q, %d, %d): reading: %v", key, off, n, err)
	}
	return b
}

func list(t *testing.T, s tiered.ObjectStore, prefix string) []string {
	t.Helper()
	keys := []string{}
	err := s.List(t.Context(), prefix, func(oi tiered.ObjectInfo) error {
		keys = append(keys, oi.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return keys
}

func testRoundTrip(t *testing.T, s tiered.ObjectStore) {
	want := data(1, 100_000)
	put(t, s, "tenant/ns/topic/0/seg-1", want)
	if got := get(t, s, "tenant/ns/topic/0/seg-1", 0, -1); !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes that differ from the %d put", len(got), len(want))
	}
	oi, err := s.Stat(t.Context(), "tenant/ns/topic/0/seg-1")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if oi.Key != "tenant/ns/topic/0/seg-1" || oi.Size != int64(len(want)) || oi.ModTime.IsZero() {
		t.Fatalf("Stat = %+v, want the key, size %d and a modification time", oi, len(want))
	}
}

func testEmptyObject(t *testing.T, s tiered.ObjectStore) {
	put(t, s, "empty", nil)
	if oi, err := s.Stat(t.Context(), "empty"); err != nil || oi.Size != 0 {
		t.Fatalf("Stat = %+v, %v; want size 0", oi, err)
	}
	if got := get(t, s, "empty", 0, -1); len(got) != 0 {
		t.Fatalf("read %d bytes of an empty object", len(got))
	}
	if got := get(t, s, "empty", 0, 10); len(got) != 0 {
		t.Fatalf("read %d bytes of an empty object", len(got))
	}
}

func testRanges(t *testing.T, s tiered.ObjectStore) {
	const size = 10_000
	obj := data(2, size)
	put(t, s, "r", obj)
	for _, tc := range []struct {
		name   string
		off, n int64
		want   []byte
	}{
		{"the start", 0, 10, obj[:10]},
		{"the middle", 4000, 1234, obj[4000:5234]},
		{"the end", size - 10, 10, obj[size-10:]},
		{"the last byte", size - 1, 1, obj[size-1:]},
		{"from the middle to the end", 5000, -1, obj[5000:]},
		{"past the end, cut short", size - 5, 100, obj[size-5:]},
		{"zero bytes", 100, 0, nil},
		{"at the end: nothing", size, 10, nil},
		{"at the end to the end: nothing", size, -1, nil},
	} {
		if got := get(t, s, "r", tc.off, tc.n); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: GetRange(%d, %d) gave %d bytes, want %d", tc.name, tc.off, tc.n, len(got), len(tc.want))
		}
	}
	for _, off := range []int64{size + 1, size + 1000, -1} {
		rc, err := s.GetRange(t.Context(), "r", off, 10)
		if err == nil {
			rc.Close()
		}
		if !errors.Is(err, tiered.ErrOutOfRange) {
			t.Errorf("GetRange(%d, 10) on %d bytes: %v, want ErrOutOfRange", off, size, err)
		}
	}
}

func testOverwrite(t *testing.T, s tiered.ObjectStore) {
	put(t, s, "k", data(3, 5000))
	second := data(4, 1234)
	put(t, s, "k", second)
	if got := get(t, s, "k", 0, -1); !bytes.Equal(got, second) {
		t.Fatalf("after the second put, read %d bytes that are not the second object", len(got))
	}
	if oi, err := s.Stat(t.Context(), "k"); err != nil || oi.Size != int64(len(second)) {
		t.Fatalf("Stat = %+v, %v; want size %d", oi, err, len(second))
	}
}

func testShortReader(t *testing.T, s tiered.ObjectStore) {
	old := data(5, 3000)
	put(t, s, "k", old)
	err := s.Put(t.Context(), "k", bytes.NewReader(data(6, 500)), 1000)
	if err == nil {
		t.Fatal("Put of 1000 bytes from a reader of 500 succeeded")
	}
	if got := get(t, s, "k", 0, -1); !bytes.Equal(got, old) {
		t.Fatalf("after a failed put, read %d bytes that are not the old object", len(got))
	}
	if err := s.Put(t.Context(), "fresh", bytes.NewReader(nil), 10); err == nil {
		t.Fatal("Put of 10 bytes from an empty reader succeeded")
	}
	if _, err := s.Stat(t.Context(), "fresh"); !errors.Is(err, tiered.ErrNotFound) {
		t.Fatalf("Stat after a failed put: %v, want ErrNotFound", err)
	}
	if err := s.Put(t.Context(), "neg", bytes.NewReader(nil), -1); err == nil {
		t.Fatal("Put with a negative size succeeded")
	}
}

func testCancelledPut(t *testing.T, s tiered.ObjectStore) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	b := data(7, 1000)
	if err := s.Put(ctx, "k", bytes.NewReader(b), int64(len(b))); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := s.Stat(t.Context(), "k"); !errors.Is(err, tiered.ErrNotFound) {
		t.Fatalf("Stat after a cancelled put: %v, want ErrNotFound", err)
	}
}

func testNotFound(t *testing.T, s tiered.ObjectStore) {
	put(t, s, "dir/present", []byte("x"))
	for _, key := range []string{"absent", "dir/absent", "dir", "dir/present/below"} {
		if _, err := s.Stat(t.Context(), key); !errors.Is(err, tiered.ErrNotFound) {
			t.Errorf("Stat(%q): %v, want ErrNotFound", key, err)
		}
		rc, err := s.GetRange(t.Context(), key, 0, -1)
		if err == nil {
			rc.Close()
		}
		if !errors.Is(err, tiered.ErrNotFound) {
			t.Errorf("GetRange(%q): %v, want ErrNotFound", key, err)
		}
	}
}

func testDelete(t *testing.T, s tiered.ObjectStore) {
	if err := s.Delete(t.Context(), "never/was"); err != nil {
		t.Fatalf("Delete of an absent object: %v", err)
	}
	put(t, s, "a/b", []byte("x"))
	put(t, s, "a/c", []byte("y"))
	if err := s.Delete(t.Context(), "a/b"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Stat(t.Context(), "a/b"); !errors.Is(err, tiered.ErrNotFound) {
		t.Fatalf("Stat after Delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(t.Context(), "a/b"); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if err := s.Delete(t.Context(), "a"); err != nil {
		t.Fatalf("Delete of a key that is only a directory of others: %v", err)
	}
	if got := list(t, s, ""); !slices.Equal(got, []string{"a/c"}) {
		t.Fatalf("after deletes the store lists %q, want [a/c]", got)
	}
}

func testListOrderAndPrefix(t *testing.T, s tiered.ObjectStore) {
	// '-' < '.' < '/' < 'b': a walk of directories in name order would
	// put t/a/b before t/a-x and t/a.c.
	all := []string{"t/a-x", "t/a.c", "t/a/b", "t/ab", "t/b/1", "t/b/10", "t/b/2", "u/z"}
	shuffled := slices.Clone(all)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for i, k := range shuffled {
		put(t, s, k, data(uint64(i), i+1))
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", all},
		{"t/", all[:7]},
		{"t/a", all[:4]},
		{"t/a/", []string{"t/a/b"}},
		{"t/b/1", []string{"t/b/1", "t/b/10"}},
		{"t/b/10", []string{"t/b/10"}},
		{"u/z", []string{"u/z"}},
		{"v", []string{}},
		{"t/zz/", []string{}},
		{"u/z/", []string{}},
	} {
		if got := list(t, s, tc.prefix); !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
	err := s.List(t.Context(), "t/b/", func(oi tiered.ObjectInfo) error {
		want := map[string]int64{"t/b/1": 0, "t/b/10": 0, "t/b/2": 0}
		if _, ok := want[oi.Key]; !ok || oi.ModTime.IsZero() {
			return fmt.Errorf("listed %+v", oi)
		}
		if i := slices.Index(shuffled, oi.Key); oi.Size != int64(i+1) {
			return fmt.Errorf("listed %q with size %d, want %d", oi.Key, oi.Size, i+1)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testListStops(t *testing.T, s tiered.ObjectStore) {
	for i := range 5 {
		put(t, s, fmt.Sprintf("k/%d", i), []byte("x"))
	}
	stop := errors.New("enough")
	calls := 0
	err := s.List(t.Context(), "k/", func(tiered.ObjectInfo) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 2 {
		t.Fatalf("List returned %v after %d calls, want the callback's error after 2", err, calls)
	}
}

func testListPages(t *testing.T, s tiered.ObjectStore) {
	const n = 1100 // S3 lists at most 1000 keys a request
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("p/%05d", i)
	}
	putAll(t, s, want, func(int) []byte { return nil })
	if got := list(t, s, "p/"); !slices.Equal(got, want) {
		t.Fatalf("List gave %d keys (first %q), want %d in order", len(got), got[:min(3, len(got))], n)
	}
}

// putAll puts the keys from 8 goroutines, key i holding body(i).
func putAll(t *testing.T, s tiered.ObjectStore, keys []string, body func(i int) []byte) {
	t.Helper()
	const workers = 8
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(keys); i += workers {
				b := body(i)
				if err := s.Put(t.Context(), keys[i], bytes.NewReader(b), int64(len(b))); err != nil {
					errs[w] = fmt.Errorf("Put(%q): %w", keys[i], err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

func testConcurrentPuts(t *testing.T, s tiered.ObjectStore) {
	keys := make([]string, 64)
	for i := range keys {
		keys[i] = fmt.Sprintf("c/%d/obj", i%4) + fmt.Sprint(i)
	}
	putAll(t, s, keys, func(i int) []byte { return data(uint64(100+i), 1000+i) })
	for i, k := range keys {
		if got := get(t, s, k, 0, -1); !bytes.Equal(got, data(uint64(100+i), 1000+i)) {
			t.Errorf("%s holds %d bytes that are not what was put", k, len(got))
		}
	}
}

func testLargeObject(t *testing.T, s tiered.ObjectStore) {
	gen := func() io.Reader { return io.LimitReader(rand.NewChaCha8(seedOf(9)), LargeObjectBytes) }
	if err := s.Put(t.Context(), "big", gen(), LargeObjectBytes); err != nil {
		t.Fatalf("Put of %d bytes: %v", LargeObjectBytes, err)
	}
	if oi, err := s.Stat(t.Context(), "big"); err != nil || oi.Size != LargeObjectBytes {
		t.Fatalf("Stat = %+v, %v; want size %d", oi, err, LargeObjectBytes)
	}
	want := sha256.New()
	io.Copy(want, gen())
	rc, err := s.GetRange(t.Context(), "big", 0, -1)
	if err != nil {
		t.Fatalf("GetRange: %v", err)
	}
	got := sha256.New()
	n, err := io.Copy(got, rc)
	rc.Close()
	if err != nil || n != LargeObjectBytes || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("read back %d bytes (%v) whose digest differs from the object put", n, err)
	}
	// A range across the 16 MiB boundary, where a multipart upload's
	// first part ends.
	const off, length = 16<<20 - 100, 200
	r := gen()
	io.CopyN(io.Discard, r, off)
	wantRange := make([]byte, length)
	io.ReadFull(r, wantRange)
	if gotRange := get(t, s, "big", off, length); !bytes.Equal(gotRange, wantRange) {
		t.Fatalf("GetRange(%d, %d) differs from the object put", off, length)
	}
}

func testKeys(t *testing.T, s tiered.ObjectStore) {
	invalid := []string{
		"", "/a", "a/", "a//b", ".", "..", "a/../b", "../a", "./a", "a/.hidden", ".tmp",
		`a\b`, "a\x00b", "a\nb", "a\x7fb", "\xff\xfe", strings.Repeat("x", tiered.MaxKeyPartBytes+1),
		strings.Repeat("abc/", tiered.MaxKeyBytes/4) + "x",
	}
	for _, key := range invalid {
		if err := s.Put(t.Context(), key, bytes.NewReader([]byte("x")), 1); !errors.Is(err, tiered.ErrInvalidKey) {
			t.Errorf("Put(%q): %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Stat(t.Context(), key); !errors.Is(err, tiered.ErrInvalidKey) {
			t.Errorf("Stat(%q): %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.GetRange(t.Context(), key, 0, -1); !errors.Is(err, tiered.ErrInvalidKey) {
			t.Errorf("GetRange(%q): %v, want ErrInvalidKey", key, err)
		}
		if err := s.Delete(t.Context(), key); !errors.Is(err, tiered.ErrInvalidKey) {
			t.Errorf("Delete(%q): %v, want ErrInvalidKey", key, err)
		}
	}
	for _, prefix := range []string{"/", "/a", "a//", "../", "a/./", ".tmp/"} {
		if err := s.List(t.Context(), prefix, func(tiered.ObjectInfo) error { return nil }); !errors.Is(err, tiered.ErrInvalidKey) {
			t.Errorf("List(%q): %v, want ErrInvalidKey", prefix, err)
		}
	}
	valid := []string{
		"seg ü/x=1,2+3@~;(ok)!", "a-b_c.d/e.f", "Z/0",
		strings.Repeat("y", tiered.MaxKeyPartBytes),
		strings.Repeat("abc/", (tiered.MaxKeyBytes-1)/4) + "x",
	}
	for i, key := range valid {
		put(t, s, key, data(uint64(200+i), 10))
		if got := get(t, s, key, 0, -1); !bytes.Equal(got, data(uint64(200+i), 10)) {
			t.Errorf("%q read back wrong", key)
		}
	}
	slices.Sort(valid)
	if got := list(t, s, ""); !slices.Equal(got, valid) {
		t.Errorf("List = %q, want %q", got, valid)
	}
}

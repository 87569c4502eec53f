package metadatatest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/magnetar-mq/magnetar/metadata"
)

type conformanceTest struct {
	name string
	run  func(t *testing.T, s metadata.Store)
}

func txnTests() []conformanceTest {
	return []conformanceTest{
		{"A Txn's writes all take one revision and every key gets it as ModRevision", testTxnOneRevision},
		{"Txn compares version, value and existence with each operator", testTxnCompares},
		{"A Txn whose compares do not all hold runs Else and none of Then", testTxnElse},
		{"A Txn that changes nothing takes no revision", testTxnNoChange},
		{"Watchers see every write of a Txn, at the Txn's revision", testTxnWatch},
		{"Malformed Txns are rejected and change nothing", testTxnInvalid},
		{"Of racing compare-and-swap Txns from one version exactly one wins", testTxnRace},
	}
}

func mustTxn(t *testing.T, s metadata.Store, req metadata.TxnRequest) metadata.TxnResponse {
	t.Helper()
	resp, err := s.Txn(ctxT(t), req)
	if err != nil {
		t.Fatalf("Txn(%+v): %v", req, err)
	}
	return resp
}

func testTxnOneRevision(t *testing.T, s metadata.Store) {
	a := mustPut(t, s, "a", "1", 0)
	mustPut(t, s, "b", "1", 0)
	rev := revision(t, s)
	resp := mustTxn(t, s, metadata.TxnRequest{Then: []metadata.Op{
		metadata.PutOp("a", []byte("2")),
		metadata.PutOp("c", []byte("new")),
		metadata.DeleteOp("b"),
		metadata.DeleteOp("absent"),
	}})
	if !resp.Succeeded || resp.Revision != rev+1 || len(resp.Results) != 4 {
		t.Fatalf("Txn = %+v, want succeeded at revision %d with 4 results", resp, rev+1)
	}
	wantA := metadata.KV{Key: "a", Value: []byte("2"), Version: 2, CreateRevision: a.CreateRevision, ModRevision: rev + 1}
	wantC := metadata.KV{Key: "c", Value: []byte("new"), Version: 1, CreateRevision: rev + 1, ModRevision: rev + 1}
	if r := resp.Results; !sameKV(r[0].KV, wantA) || !sameKV(r[1].KV, wantC) ||
		!r[2].Deleted || r[2].KV.Key != "b" || r[2].KV.ModRevision != rev+1 ||
		r[3].Deleted || r[3].KV.Key != "absent" || r[3].KV.ModRevision != 0 {
		t.Fatalf("Txn results = %+v", resp.Results)
	}
	assertKV(t, s, wantA)
	assertKV(t, s, wantC)
	assertMissing(t, s, "b")
	if got := revision(t, s); got != rev+1 {
		t.Fatalf("store revision after the txn = %d, want %d", got, rev+1)
	}
}

func testTxnCompares(t *testing.T, s metadata.Store) {
	mustPut(t, s, "x", "b", 0)
	mustPut(t, s, "x", "m", 1) // x: version 2, value "m"
	V := func(op metadata.CompareOp, v int64) metadata.Compare { return metadata.CompareVersion("x", op, v) }
	B := func(op metadata.CompareOp, v string) metadata.Compare {
		return metadata.CompareValue("x", op, []byte(v))
	}
	for _, tc := range []struct {
		name string
		cmp  metadata.Compare
		want bool
	}{
		{"version == current", V(metadata.CmpEqual, 2), true},
		{"version == stale", V(metadata.CmpEqual, 1), false},
		{"version != stale", V(metadata.CmpNotEqual, 1), true},
		{"version != current", V(metadata.CmpNotEqual, 2), false},
		{"version < higher", V(metadata.CmpLess, 3), true},
		{"version < itself", V(metadata.CmpLess, 2), false},
		{"version > lower", V(metadata.CmpGreater, 1), true},
		{"version > itself", V(metadata.CmpGreater, 2), false},
		{"value == current", B(metadata.CmpEqual, "m"), true},
		{"value == other", B(metadata.CmpEqual, "b"), false},
		{"value != other", B(metadata.CmpNotEqual, "b"), true},
		{"value < later", B(metadata.CmpLess, "z"), true},
		{"value < earlier", B(metadata.CmpLess, "a"), false},
		{"value > earlier", B(metadata.CmpGreater, "a"), true},
		{"exists on a present key", metadata.KeyExists("x"), true},
		{"exists on an absent key", metadata.KeyExists("nope"), false},
		{"missing on an absent key", metadata.KeyMissing("nope"), true},
		{"missing on a present key", metadata.KeyMissing("x"), false},
		{"absent key has version 0", metadata.CompareVersion("nope", metadata.CmpEqual, 0), true},
		{"value == of an absent key is false", metadata.CompareValue("nope", metadata.CmpEqual, nil), false},
		{"value != of an absent key is false too", metadata.CompareValue("nope", metadata.CmpNotEqual, []byte("v")), false},
	} {
		resp := mustTxn(t, s, metadata.TxnRequest{Compares: []metadata.Compare{tc.cmp}})
		if resp.Succeeded != tc.want {
			t.Errorf("%s: succeeded = %v, want %v", tc.name, resp.Succeeded, tc.want)
		}
	}
}

func testTxnElse(t *testing.T, s metadata.Store) {
	x := mustPut(t, s, "x", "1", 0)
	rev := revision(t, s)
	resp := mustTxn(t, s, metadata.TxnRequest{
		Compares: []metadata.Compare{metadata.KeyExists("x"), metadata.CompareVersion("x", metadata.CmpEqual, 7)},
		Then:     []metadata.Op{metadata.PutOp("then", []byte("t")), metadata.DeleteOp("x")},
		Else:     []metadata.Op{metadata.PutOp("else", []byte("e"))},
	})
	if resp.Succeeded || resp.Revision != rev+1 || len(resp.Results) != 1 || resp.Results[0].KV.Key != "else" {
		t.Fatalf("Txn = %+v, want the else branch at revision %d", resp, rev+1)
	}
	assertMissing(t, s, "then")
	assertKV(t, s, x)
	if kv, ok := mustGet(t, s, "else"); !ok || string(kv.Value) != "e" {
		t.Fatalf("else key = %+v, %v", kv, ok)
	}
}

func testTxnNoChange(t *testing.T, s metadata.Store) {
	mustPut(t, s, "x", "1", 0)
	rev := revision(t, s)
	for _, req := range []metadata.TxnRequest{
		{Compares: []metadata.Compare{metadata.KeyExists("x")}},                                                 // a read-only check
		{Compares: []metadata.Compare{metadata.KeyMissing("x")}},                                                // a failed one, no else
		{Then: []metadata.Op{metadata.DeleteOp("absent"), metadata.DeleteOp("absent2")}},                        // deletes of absent keys
		{Compares: []metadata.Compare{metadata.KeyMissing("x")}, Then: []metadata.Op{metadata.PutOp("y", nil)}}, // then not taken
	} {
		resp := mustTxn(t, s, req)
		if resp.Revision != rev {
			t.Fatalf("Txn(%+v) = %+v, want revision %d", req, resp, rev)
		}
		if got := revision(t, s); got != rev {
			t.Fatalf("after Txn(%+v) the store revision is %d, want %d", req, got, rev)
		}
	}
	assertMissing(t, s, "y")
}

func testTxnWatch(t *testing.T, s metadata.Store) {
	mustPut(t, s, "w/old", "1", 0)
	ch, err := s.Watch(ctxT(t), "w/", 0)
	if err != nil {
		t.Fatal(err)
	}
	resp := mustTxn(t, s, metadata.TxnRequest{Then: []metadata.Op{
		metadata.PutOp("w/a", []byte("1")), metadata.DeleteOp("w/old"), metadata.PutOp("other", []byte("x")),
	}})
	rev := resp.Revision
	assertEvent(t, ch, metadata.EventPut, metadata.KV{Key: "w/a", Value: []byte("1"), Version: 1, CreateRevision: rev, ModRevision: rev})
	assertEvent(t, ch, metadata.EventDelete, metadata.KV{Key: "w/old", ModRevision: rev})
	sentinel := mustPut(t, s, "w/z", "end", 0)
	assertEvent(t, ch, metadata.EventPut, sentinel) // "other" is not under w/
}

func testTxnInvalid(t *testing.T, s metadata.Store) {
	mustPut(t, s, "x", "1", 0)
	rev := revision(t, s)
	for _, tc := range []struct {
		name string
		req  metadata.TxnRequest
		want error
	}{
		{"an empty compare key", metadata.TxnRequest{Compares: []metadata.Compare{metadata.KeyExists("")}}, metadata.ErrInvalidKey},
		{"an empty op key", metadata.TxnRequest{Then: []metadata.Op{metadata.PutOp("", nil)}}, metadata.ErrInvalidKey},
		{"two ops on one key", metadata.TxnRequest{Then: []metadata.Op{metadata.PutOp("a", nil), metadata.DeleteOp("a")}}, metadata.ErrInvalidTxn},
		{"two ops on one key in else", metadata.TxnRequest{Else: []metadata.Op{metadata.PutOp("a", nil), metadata.PutOp("a", nil)}}, metadata.ErrInvalidTxn},
		{"an unknown compare target", metadata.TxnRequest{Compares: []metadata.Compare{{Key: "x", Target: 99, Op: metadata.CmpEqual}}}, metadata.ErrInvalidTxn},
		{"an unknown compare operator", metadata.TxnRequest{Compares: []metadata.Compare{{Key: "x", Target: metadata.TargetVersion, Op: 99}}}, metadata.ErrInvalidTxn},
		{"an unknown op type", metadata.TxnRequest{Then: []metadata.Op{{Type: 99, Key: "a"}}}, metadata.ErrInvalidTxn},
	} {
		if _, err := s.Txn(ctxT(t), tc.req); !errors.Is(err, tc.want) {
			t.Errorf("Txn with %s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if got := revision(t, s); got != rev {
		t.Fatalf("rejected txns moved the revision from %d to %d", rev, got)
	}
	assertMissing(t, s, "a")
}

func testTxnRace(t *testing.T, s metadata.Store) {
	const racers = 16
	mustPut(t, s, "owner", "nobody", 0)
	var wg sync.WaitGroup
	wins := make(chan int, racers)
	for i := range racers {
		wg.Go(func() {
			resp, err := s.Txn(ctxT(t), metadata.TxnRequest{
				Compares: []metadata.Compare{metadata.CompareValue("owner", metadata.CmpEqual, []byte("nobody"))},
				Then:     []metadata.Op{metadata.PutOp("owner", fmt.Appendf(nil, "racer-%d", i)), metadata.PutOp(fmt.Sprintf("won/%d", i), nil)},
			})
			if err != nil {
				t.Error(err)
				return
			}
			if resp.Succeeded {
				wins <- i
			}
		})
	}
	wg.Wait()
	close(wins)
	var winners []int
	for i := range wins {
		winners = append(winners, i)
	}
	if len(winners) != 1 {
		t.Fatalf("winners = %v, want exactly one", winners)
	}
	kv, _ := mustGet(t, s, "owner")
	if want := fmt.Sprintf("racer-%d", winners[0]); string(kv.Value) != want || kv.Version != 2 {
		t.Fatalf("owner = %q at version %d, want %q at 2", kv.Value, kv.Version, want)
	}
	res, err := s.Range(ctxT(t), "won/", metadata.RangeOptions{})
	if err != nil || len(res.KVs) != 1 || res.KVs[0].Key != fmt.Sprintf("won/%d", winners[0]) {
		t.Fatalf("won/ keys = %v, %v; want only the winner's (a txn is all or nothing)", keysOf(res.KVs), err)
	}
}

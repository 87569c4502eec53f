package bookie

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// A follower that held entries a new leader lacked drops them (Raft's
// "clearing log suffix", a tail truncation) and then takes the leader's
// entries at the same indexes. raft-wal v0.4.0 marks the segment it cut
// sealed without writing its index, so the bookie could not open its log
// again ("sealed segment has no index block", then a panic in Raft). The
// shard must reopen, any number of times, with the entries before the cut,
// the leader's entries after it, and none of the dropped ones.
func TestALogWhoseTailWasTruncatedOpensAgain(t *testing.T) {
	for _, tc := range []struct {
		name     string
		headTo   uint64 // head truncated up to here first (0: not)
		stored   uint64 // entries 1..stored written by term 1
		cutAfter uint64 // then entries after cutAfter dropped
		leaderTo uint64 // and cutAfter+1..leaderTo written by term 2
		segments bool   // entries large enough to span several segments
	}{
		{name: "cut in the only segment", stored: 50, cutAfter: 40, leaderTo: 45},
		{name: "cut in a segment whose head was truncated", headTo: 20, stored: 50, cutAfter: 40, leaderTo: 60},
		{name: "cut in the tail segment of several", stored: 235, cutAfter: 232, leaderTo: 240, segments: true},
		{name: "cut with nothing written after it", stored: 50, cutAfter: 30, leaderTo: 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			log := slog.New(slog.DiscardHandler)
			pad := ""
			if tc.segments {
				pad = strings.Repeat(".", 10<<10) // 1 MiB segments hold ~100 entries
			}
			data := func(term, i uint64) []byte { return fmt.Appendf(nil, "term %d entry %d%s", term, i, pad) }
			store := func(st storage, term, from, to uint64) {
				t.Helper()
				for b := from; b <= to; b += 10 { // batches of 10, as Raft stores them
					var logs []*raft.Log
					for i := b; i <= min(b+9, to); i++ {
						logs = append(logs, &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: data(term, i)})
					}
					if err := st.log(nil, nil).StoreLogs(logs); err != nil {
						t.Fatal(err)
					}
				}
			}
			first := tc.headTo + 1
			check := func(st storage, last uint64) {
				t.Helper()
				if got, err := st.wal.FirstIndex(); err != nil || got != first {
					t.Fatalf("first index %d, %v; want %d", got, err, first)
				}
				if got, err := st.wal.LastIndex(); err != nil || got != last {
					t.Fatalf("last index %d, %v; want %d", got, err, last)
				}
				for i := first; i <= last; i++ {
					var l raft.Log
					if err := st.wal.GetLog(i, &l); err != nil {
						t.Fatalf("entry %d: %v", i, err)
					}
					term := uint64(1)
					if i > tc.cutAfter {
						term = 2
					}
					if want := data(term, i); !bytes.Equal(l.Data, want) {
						t.Fatalf("entry %d holds %.20q, want %.20q", i, l.Data, want)
					}
				}
			}
			reopen := func(st storage) storage {
				t.Helper()
				if err := st.close(); err != nil {
					t.Fatal(err)
				}
				st, err := openStorage("shard", fs, testStorageOptions(), log)
				if err != nil {
					t.Fatalf("reopening the log: %v", err)
				}
				return st
			}

			st, err := openStorage("shard", fs, testStorageOptions(), log)
			if err != nil {
				t.Fatal(err)
			}
			store(st, 1, 1, tc.stored)
			if tc.headTo > 0 {
				if err := st.wal.DeleteRange(1, tc.headTo); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.log(nil, nil).DeleteRange(tc.cutAfter+1, tc.stored); err != nil {
				t.Fatal(err)
			}
			if tc.leaderTo > tc.cutAfter {
				store(st, 2, tc.cutAfter+1, tc.leaderTo)
			}
			check(st, tc.leaderTo)
			if n := len(st.meta.segments()); tc.segments && n < 3 {
				t.Fatalf("the log has %d segments, want several", n)
			}

			// Reopen as after a crash in the middle of a first repair, which
			// left its copy behind, not yet named in the metadata: the
			// repair starts again.
			if err := st.close(); err != nil {
				t.Fatal(err)
			}
			ps, err := newWALMeta(fs, "shard/wal").Load("shard/wal")
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(ps.Segments, unindexed)
			if i < 0 {
				t.Fatal("the truncation left no segment without an index: the test no longer reproduces raft-wal#31")
			}
			left := segment.FileName(types.SegmentInfo{BaseIndex: ps.Segments[i].MinIndex, ID: ps.NextSegmentID})
			f, err := fs.Create("shard/wal/"+left, vfs.WriteCategoryUnspecified)
			if err == nil {
				_, err = f.Write([]byte("half a copy"))
				err = errors.Join(err, f.Close())
			}
			if err != nil {
				t.Fatal(err)
			}
			st, err = openStorage("shard", fs, testStorageOptions(), log)
			if err != nil {
				t.Fatalf("reopening the log: %v", err)
			}
			check(st, tc.leaderTo)
			store(st, 2, tc.leaderTo+1, tc.leaderTo+5)
			st = reopen(st)
			defer st.close()
			check(st, tc.leaderTo+5)
		})
	}
}

package bookie

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
	"github.com/hashicorp/raft-wal/types"
)

func testStorageOptions() storageOptions {
	return storageOptions{cacheSize: 1 << 20, memTableSize: 1 << 20, walSegmentSize: 1 << 20, logLevel: "error"}
}

func storeEntries(t *testing.T, st storage, from, to uint64) {
	t.Helper()
	var logs []*raft.Log
	for i := from; i <= to; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte(fmt.Sprintf("entry %d", i))})
	}
	if err := st.wal.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
}

func checkLogEntries(t *testing.T, st storage, last uint64) {
	t.Helper()
	if got, err := st.wal.LastIndex(); err != nil || got != last {
		t.Fatalf("last index %d, %v; want %d", got, err, last)
	}
	for i := uint64(1); i <= last; i++ {
		var l raft.Log
		if err := st.wal.GetLog(i, &l); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if want := fmt.Sprintf("entry %d", i); string(l.Data) != want {
			t.Fatalf("entry %d holds %q, want %q", i, l.Data, want)
		}
	}
}

// A torn write at the tail of the log (a batch whose bytes reached the
// file but whose commit frame and fsync did not: what a crash during
// StoreLogs leaves) is dropped when the log is opened again: the entries
// synced before it are all there, the next append continues right after
// them, and it survives another reopen. This is raft-wal's recovery (it
// reads frames up to the last commit frame whose CRC matches) working
// through walVFS.
func TestATornLogTailIsDroppedOnOpen(t *testing.T) {
	for _, torn := range []struct {
		name string
		tail func(r *rand.Rand) []byte
	}{
		{"an entry frame without its commit", func(r *rand.Rand) []byte {
			// Frame header: type 1 (entry), 3 reserved bytes, length 64 LE.
			return append([]byte{1, 0, 0, 0, 64, 0, 0, 0}, bytes.Repeat([]byte{0xab}, 64)...)
		}},
		{"random bytes", func(r *rand.Rand) []byte {
			b := make([]byte, 300)
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			return b
		}},
	} {
		t.Run(torn.name, func(t *testing.T) {
			fs := vfs.NewMem()
			log := slog.New(slog.DiscardHandler)
			st, err := openStorage("shard", fs, testStorageOptions(), log)
			if err != nil {
				t.Fatal(err)
			}
			storeEntries(t, st, 1, 50)
			if err := st.close(); err != nil {
				t.Fatal(err)
			}
			names, err := fs.List("shard/wal")
			if err != nil {
				t.Fatal(err)
			}
			var seg string
			for _, n := range names {
				if strings.HasSuffix(n, ".wal") {
					seg = "shard/wal/" + n
				}
			}
			f, err := fs.OpenReadWrite(seg, vfs.WriteCategoryUnspecified)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(torn.tail(rand.New(rand.NewPCG(1, 2))), fi.Size()); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}

			st, err = openStorage("shard", fs, testStorageOptions(), log)
			if err != nil {
				t.Fatalf("opening a log with a torn tail: %v", err)
			}
			checkLogEntries(t, st, 50)
			storeEntries(t, st, 51, 60)
			if err := st.close(); err != nil {
				t.Fatal(err)
			}
			st, err = openStorage("shard", fs, testStorageOptions(), log)
			if err != nil {
				t.Fatal(err)
			}
			defer st.close()
			checkLogEntries(t, st, 60)
		})
	}
}

// Entries truncated from the head of the log are gone for Raft even while
// raft-wal still holds them in the tail segment, so a follower that needs
// them is sent a snapshot.
func TestTruncatedEntriesAreNotFound(t *testing.T) {
	st, err := openStorage("shard", vfs.NewMem(), testStorageOptions(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	storeEntries(t, st, 1, 50)
	if err := st.wal.DeleteRange(1, 40); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := st.log(nil, nil).GetLog(40, &l); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog of a truncated entry: %v, want raft.ErrLogNotFound", err)
	}
	if err := st.log(nil, nil).GetLog(41, &l); err != nil || string(l.Data) != "entry 41" {
		t.Fatalf("GetLog(41) = %q, %v", l.Data, err)
	}
}

// The log's metadata file round-trips, and survives being rewritten.
func TestWALMetaKeepsStateAndStableKeysAcrossReopens(t *testing.T) {
	fs := vfs.NewCrashableMem()
	if err := mkdirAllSynced(fs, "wal"); err != nil {
		t.Fatal(err)
	}
	m := newWALMeta(fs, "wal")
	if st, err := m.Load("wal"); err != nil || len(st.Segments) != 0 {
		t.Fatalf("Load of a new directory: %+v, %v", st, err)
	}
	st := types.PersistentState{NextSegmentID: 3, Segments: []types.SegmentInfo{
		{ID: 1, BaseIndex: 1, MinIndex: 1, MaxIndex: 99, Codec: 1, IndexStart: 4096, SizeLimit: 1 << 20, CreateTime: time.Unix(1, 0).UTC(), SealTime: time.Unix(2, 0).UTC()},
		{ID: 2, BaseIndex: 100, MinIndex: 100, Codec: 1, SizeLimit: 1 << 20, CreateTime: time.Unix(3, 0).UTC()},
	}}
	if err := m.CommitState(st); err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][2]string{{"CurrentTerm", "\x07"}, {"LastVoteCand", "node-1"}, {"gone", "x"}} {
		if err := m.SetStable([]byte(kv[0]), []byte(kv[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.SetStable([]byte("gone"), nil); err != nil {
		t.Fatal(err)
	}
	// Only synced data survives a crash: every change above was synced.
	m = newWALMeta(fs.CrashClone(vfs.CrashCloneCfg{}), "wal")
	got, err := m.Load("wal")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Fatalf("state after reopen %+v, want %+v", got, st)
	}
	for k, want := range map[string]string{"CurrentTerm": "\x07", "LastVoteCand": "node-1", "gone": "", "never": ""} {
		v, err := m.GetStable([]byte(k))
		if err != nil || string(v) != want {
			t.Fatalf("GetStable(%q) = %q, %v; want %q", k, v, err, want)
		}
	}
}

// A corrupt metadata file fails the open; it does not start an empty log.
func TestACorruptWALMetaFileFailsLoad(t *testing.T) {
	fs := vfs.NewMem()
	if err := fs.MkdirAll("wal", 0o755); err != nil {
		t.Fatal(err)
	}
	m := newWALMeta(fs, "wal")
	if err := m.SetStable([]byte("CurrentTerm"), []byte{1}); err != nil {
		t.Fatal(err)
	}
	f, err := fs.OpenReadWrite("wal/"+walMetaFile, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{'X'}, 10); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := newWALMeta(fs, "wal").Load("wal"); err == nil {
		t.Fatal("Load of a corrupt file succeeded")
	}
}

// FuzzDecodeWALMeta checks that decoding the log's metadata file never
// panics, and that whatever decodes encodes to bytes that decode to the
// same again.
func FuzzDecodeWALMeta(f *testing.F) {
	st := types.PersistentState{NextSegmentID: 2, Segments: []types.SegmentInfo{{ID: 1, BaseIndex: 1, MinIndex: 1, Codec: 1, SizeLimit: 1 << 20, CreateTime: time.Unix(5, 0).UTC()}}}
	for _, stable := range []map[string][]byte{nil, {"CurrentTerm": {0, 0, 0, 0, 0, 0, 0, 3}, "LastVoteCand": []byte("b1")}} {
		b, err := appendWALMeta(nil, st, stable)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("MGWALMT1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, stable, err := decodeWALMeta(b)
		if err != nil {
			return
		}
		again, err := appendWALMeta(nil, st, stable)
		if err != nil {
			t.Fatal(err)
		}
		st2, stable2, err := decodeWALMeta(again)
		if err != nil {
			t.Fatalf("re-encoded metadata does not decode: %v", err)
		}
		third, err := appendWALMeta(nil, st2, stable2)
		if err != nil || !bytes.Equal(third, again) {
			t.Fatalf("metadata does not round-trip: %v", err)
		}
	})
}

package raftnode

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// counterFSM is a test FSM that follows the package's durability contract.
// Its commands are deliberately not idempotent: "incr <name>" adds one to a
// counter and returns the new value, so an entry applied twice shows up as a
// wrong count. "fail" returns an error response.
type counterFSM struct {
	db *pebble.DB

	mu      sync.Mutex
	applied uint64 // last applied index, mirrored from the DB
	applies int    // entries actually applied (not skipped) by this instance
	snaps   int    // Snapshot calls
}

var (
	fsmPrefix  = []byte("fsm/")
	appliedKey = []byte("fsm/applied")
)

func counterKey(name string) []byte { return append([]byte("fsm/c/"), name...) }

func newCounterFSM(db *pebble.DB) (*counterFSM, error) {
	f := &counterFSM{db: db}
	v, err := getUint64(db, appliedKey)
	f.applied = v
	return f, err
}

func getUint64(r pebble.Reader, key []byte) (uint64, error) {
	val, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	if len(val) != 8 {
		return 0, fmt.Errorf("bad uint64 of %d bytes", len(val))
	}
	return binary.BigEndian.Uint64(val), nil
}

func (f *counterFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l.Index <= f.applied {
		return nil // already applied before a restart
	}
	f.applies++
	b := f.db.NewBatch()
	defer b.Close()
	var resp any
	switch cmd := string(l.Data); {
	case cmd == "fail":
		resp = errors.New("counter: command failed")
	case len(cmd) > 5 && cmd[:5] == "incr ":
		key := counterKey(cmd[5:])
		v, err := getUint64(f.db, key)
		if err != nil {
			panic(err)
		}
		v++
		_ = b.Set(key, binary.BigEndian.AppendUint64(nil, v), nil)
		resp = v
	default:
		resp = fmt.Errorf("counter: unknown command %q", cmd)
	}
	_ = b.Set(appliedKey, binary.BigEndian.AppendUint64(nil, l.Index), nil)
	if err := b.Commit(pebble.NoSync); err != nil {
		panic(err)
	}
	f.applied = l.Index
	return resp
}

func (f *counterFSM) count(name string) uint64 {
	v, err := getUint64(f.db, counterKey(name))
	if err != nil {
		panic(err)
	}
	return v
}

func (f *counterFSM) stats() (applied uint64, applies, snaps int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied, f.applies, f.snaps
}

// Snapshot makes the state durable (contract rule 3) and captures a Pebble
// snapshot that Persist streams out.
func (f *counterFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	f.snaps++
	f.mu.Unlock()
	if err := f.db.LogData(nil, pebble.Sync); err != nil {
		return nil, err
	}
	return &counterSnapshot{snap: f.db.NewSnapshot()}, nil
}

// Restore replaces the whole state with the snapshot's.
func (f *counterFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.db.NewBatch()
	defer b.Close()
	_ = b.DeleteRange(fsmPrefix, []byte("fsm0"), nil)
	r := bufio.NewReader(rc)
	for {
		var lens [8]byte
		if _, err := io.ReadFull(r, lens[:]); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		kv := make([]byte, binary.BigEndian.Uint32(lens[:4])+binary.BigEndian.Uint32(lens[4:]))
		if _, err := io.ReadFull(r, kv); err != nil {
			return err
		}
		k := binary.BigEndian.Uint32(lens[:4])
		_ = b.Set(kv[:k], kv[k:], nil)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	v, err := getUint64(f.db, appliedKey)
	f.applied = v
	return err
}

type counterSnapshot struct{ snap *pebble.Snapshot }

func (s *counterSnapshot) Persist(sink raft.SnapshotSink) error {
	err := s.write(sink)
	if err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *counterSnapshot) write(w io.Writer) error {
	it, err := s.snap.NewIter(&pebble.IterOptions{LowerBound: fsmPrefix, UpperBound: []byte("fsm0")})
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for it.First(); it.Valid(); it.Next() {
		buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(it.Key()))))
		buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(it.Value()))))
		buf.Write(it.Key())
		buf.Write(it.Value())
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}

func (s *counterSnapshot) Release() { _ = s.snap.Close() }

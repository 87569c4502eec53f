package bookie

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// lazySnapshotMarker is what a shard's own snapshots hold: Raft snapshots
// a shard only to truncate its log, and its state is already durable in
// the state database (fsm.Snapshot flushes it), so writing all of it to a
// file every SnapshotThreshold entries would rewrite the whole shard again
// and again. A snapshot is instead this marker, and its stream is made
// from the live state when Raft opens it to send to a follower.
var lazySnapshotMarker = []byte("MGBKLAZY")

// lazySnapshots is the shard's raft.SnapshotStore: the file store, whose
// Open turns a lazy snapshot into a full stream of the state as it is
// now. That state is at an applied index at or after the snapshot's: the
// stream carries its own applied index, the follower's state machine
// skips the log entries it covers, and so installing it is the same as
// installing the older state and replaying the log. Snapshots received
// from a leader are full streams and are stored and opened as they are.
type lazySnapshots struct {
	raft.SnapshotStore
	f      *fsm
	tmpDir string // where opened streams are written
}

// newLazySnapshots wraps a shard's file snapshot store; streams made for
// sending go to tmpDir, where those a crash left behind are removed now.
func newLazySnapshots(files raft.SnapshotStore, f *fsm, tmpDir string) *lazySnapshots {
	if old, err := filepath.Glob(filepath.Join(tmpDir, sendPattern)); err == nil {
		for _, f := range old {
			_ = os.Remove(f)
		}
	}
	return &lazySnapshots{SnapshotStore: files, f: f, tmpDir: tmpDir}
}

// sendPattern names the temporary files of streams being sent.
const sendPattern = "send-*.snapshot"

// Open implements raft.SnapshotStore.
func (s *lazySnapshots) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, rc, err := s.SnapshotStore.Open(id)
	if err != nil || meta.Size != int64(len(lazySnapshotMarker)) {
		return meta, rc, err
	}
	head, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, nil, err
	}
	if !bytes.Equal(head, lazySnapshotMarker) {
		// A full stream of 8 bytes cannot be, but let Restore judge.
		return meta, io.NopCloser(bytes.NewReader(head)), nil
	}
	// Raft sends the stream with its size first, so it is written out
	// before it is sent.
	f, err := os.CreateTemp(s.tmpDir, sendPattern)
	if err != nil {
		return nil, nil, fmt.Errorf("bookie: snapshot stream: %w", err)
	}
	full := &tempStream{File: f}
	// The hold keeps the log entries the snapshot references until the
	// stream is written.
	hold := s.f.pins.hold()
	snap := s.f.db.NewSnapshot()
	err = writeSnapshot(f, snap, &entryResolver{log: s.f.wal})
	snap.Close()
	s.f.pins.unhold(hold)
	var size int64
	if err == nil {
		size, err = f.Seek(0, io.SeekCurrent)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("bookie: snapshot stream: %w", err), full.Close())
	}
	m := *meta
	m.Size = size
	return &m, full, nil
}

// tempStream is a snapshot stream in a temporary file, removed on Close.
type tempStream struct{ *os.File }

func (t *tempStream) Close() error {
	return errors.Join(t.File.Close(), os.Remove(t.File.Name()))
}

package bookie

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// A snapshot stream is every key of the state machine in key order:
//
//	magic "MGBKSNP1"
//	repeated: key length uvarint (> 0) | key | value length uvarint | value
//	0 (uvarint: end of keys) | CRC-32C (Castagnoli) of all bytes before it, u32 BE
var snapshotMagic = []byte("MGBKSNP1")

const (
	maxSnapshotKey   = 64
	maxSnapshotValue = 1 << 30
	// restoreBatchBytes is how much Restore writes per Pebble batch.
	restoreBatchBytes = 4 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errBadSnapshot = errors.New("bookie: malformed snapshot")

// Snapshot makes the applied state durable, so Raft may truncate its log
// up to the snapshot's index once the snapshot is persisted. The state
// database has no WAL: its writes are durable once flushed, so Snapshot
// starts a flush of the memtables (the applied index is in them, written
// by ApplyBatch with the state it describes) and the snapshot's Persist,
// which Raft runs on its snapshot goroutine before it truncates anything,
// waits for that flush to finish. Applying goes on meanwhile: a flush of a
// full memtable takes about a tenth of a second, during which the fsm used
// to answer no append. The snapshot itself is lazy (see snapstore.go): its
// stream is made from the state only if a follower needs it.
//
// The flush also makes durable the removal of the references of segments
// deleted so far, so Persist lets their pins go: Raft truncates its log
// right after Persist, up to the pins left (walLog.DeleteRange).
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settle()
	token := f.pins.startFlush()
	flushed, err := f.db.AsyncFlush()
	if err != nil {
		return nil, fmt.Errorf("bookie: flushing state before snapshot: %w", err)
	}
	return lazySnapshot{flushed: flushed, pins: f.pins, token: token}, nil
}

// lazySnapshot persists the marker that lazySnapshots.Open expands, once
// the state as of the snapshot is flushed (flushed closed).
type lazySnapshot struct {
	flushed <-chan struct{}
	pins    *pinSet
	token   uint64 // of pins.startFlush, for the flush
}

// Persist waits for the state to be flushed, then writes the marker to
// sink.
func (s lazySnapshot) Persist(sink raft.SnapshotSink) error {
	if s.flushed != nil {
		<-s.flushed
		s.pins.flushed(s.token)
	}
	if _, err := sink.Write(lazySnapshotMarker); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (lazySnapshot) Release() {}

// hashWriter computes the CRC of what passes through it.
type hashWriter struct {
	w   *bufio.Writer
	crc uint32
}

func (h *hashWriter) Write(p []byte) (int, error) {
	h.crc = crc32.Update(h.crc, castagnoli, p)
	return h.w.Write(p)
}

// writeSnapshot writes the state machine's keys in r as a snapshot stream,
// with entries referenced in the Raft log read through res (pinned by the
// caller) and written inline.
func writeSnapshot(w io.Writer, r pebble.Reader, res *entryResolver) error {
	hw := &hashWriter{w: bufio.NewWriterSize(w, 1<<20)}
	if _, err := hw.Write(snapshotMagic); err != nil {
		return err
	}
	var hdr []byte
	for _, span := range fsmSpans {
		it, err := r.NewIter(&pebble.IterOptions{LowerBound: span[0], UpperBound: span[1]})
		if err != nil {
			return err
		}
		for it.First(); it.Valid(); it.Next() {
			v, err := it.ValueAndErr()
			if err == nil && bytes.HasPrefix(it.Key(), prefixEntry) {
				v, err = res.resolve(v)
			}
			if err != nil {
				it.Close()
				return err
			}
			hdr = binary.AppendUvarint(hdr[:0], uint64(len(it.Key())))
			hdr = append(hdr, it.Key()...)
			hdr = binary.AppendUvarint(hdr, uint64(len(v)))
			if _, err := hw.Write(hdr); err != nil {
				it.Close()
				return err
			}
			if _, err := hw.Write(v); err != nil {
				it.Close()
				return err
			}
		}
		if err := it.Close(); err != nil {
			return err
		}
	}
	if _, err := hw.Write([]byte{0}); err != nil {
		return err
	}
	if _, err := hw.w.Write(binary.BigEndian.AppendUint32(nil, hw.crc)); err != nil {
		return err
	}
	return hw.w.Flush()
}

// hashReader computes the CRC of the bytes read through it.
type hashReader struct {
	r   *bufio.Reader
	crc uint32
}

func (h *hashReader) ReadByte() (byte, error) {
	b, err := h.r.ReadByte()
	if err == nil {
		h.crc = crc32.Update(h.crc, castagnoli, []byte{b})
	}
	return b, err
}

func (h *hashReader) full(p []byte) error {
	if _, err := io.ReadFull(h.r, p); err != nil {
		return err
	}
	h.crc = crc32.Update(h.crc, castagnoli, p)
	return nil
}

// readSnapshot decodes a snapshot stream, calling fn for each key and value
// (valid only during the call). Only keys of the state machine's spans are
// accepted, and the trailing CRC must match; fn may have seen keys before a
// corruption is noticed.
func readSnapshot(r io.Reader, fn func(key, value []byte) error) error {
	hr := &hashReader{r: bufio.NewReaderSize(r, 1<<20)}
	fail := func(what string, err error) error {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %w", errBadSnapshot, what, err)
		}
		return fmt.Errorf("%w: %s", errBadSnapshot, what)
	}
	magic := make([]byte, len(snapshotMagic))
	if err := hr.full(magic); err != nil || string(magic) != string(snapshotMagic) {
		return fail("bad magic", err)
	}
	var key [maxSnapshotKey]byte
	var value []byte
	for {
		kn, err := binary.ReadUvarint(hr)
		if err != nil {
			return fail("key length", err)
		}
		if kn == 0 {
			break
		}
		if kn > maxSnapshotKey {
			return fail(fmt.Sprintf("key of %d bytes", kn), nil)
		}
		k := key[:kn]
		if err := hr.full(k); err != nil {
			return fail("key", err)
		}
		if !inFSMSpans(k) {
			return fail(fmt.Sprintf("key %q outside the state machine", k), nil)
		}
		vn, err := binary.ReadUvarint(hr)
		if err != nil {
			return fail("value length", err)
		}
		if vn > maxSnapshotValue {
			return fail(fmt.Sprintf("value of %d bytes", vn), nil)
		}
		if uint64(cap(value)) < vn {
			// Grow by reading in steps, so a lying length cannot make us
			// allocate more than the stream really holds (plus a step).
			value = value[:0]
			for uint64(len(value)) < vn {
				step := min(vn-uint64(len(value)), 1<<20)
				value = append(value, make([]byte, step)...)
				if err := hr.full(value[uint64(len(value))-step:]); err != nil {
					return fail("value", err)
				}
			}
		} else {
			value = value[:vn]
			if err := hr.full(value); err != nil {
				return fail("value", err)
			}
		}
		if err := fn(k, value); err != nil {
			return err
		}
	}
	want := hr.crc
	var sum [4]byte
	if _, err := io.ReadFull(hr.r, sum[:]); err != nil {
		return fail("checksum", err)
	}
	if got := binary.BigEndian.Uint32(sum[:]); got != want {
		return fail(fmt.Sprintf("checksum %#08x, computed %#08x", got, want), nil)
	}
	if _, err := hr.r.ReadByte(); err != io.EOF {
		return fail("bytes after the checksum", err)
	}
	return nil
}

// Restore replaces the state machine's state with a snapshot's. A marker
// key, flushed to disk first and removed in the last flush, makes an
// interrupted restore detectable when the shard next opens. Raft truncates
// its log after a restore, so the restored state is flushed (made durable:
// the state database has no WAL) before Restore returns.
//
// The restored entries are inline (a stream carries no log references), so
// the log pins of the state replaced go with it.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settle()
	if err := f.db.Set(keyRestoring, nil, pebble.NoSync); err != nil {
		return err
	}
	if err := f.db.Flush(); err != nil {
		return err
	}
	b := f.db.NewBatch()
	defer func() { b.Close() }()
	for _, span := range slices.Concat(fsmSpans, localSpans) {
		if err := b.DeleteRange(span[0], span[1], nil); err != nil {
			return err
		}
	}
	var applied uint64
	err := readSnapshot(rc, func(k, v []byte) error {
		if string(k) == string(keyApplied) {
			if len(v) != 8 {
				return fmt.Errorf("%w: applied index of %d bytes", errBadSnapshot, len(v))
			}
			applied = binary.BigEndian.Uint64(v)
		}
		if err := b.Set(k, v, nil); err != nil {
			return err
		}
		if b.Len() < restoreBatchBytes {
			return nil
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			return err
		}
		b.Close()
		b = f.db.NewBatch()
		return nil
	})
	if err != nil {
		return fmt.Errorf("bookie: restoring snapshot: %w", err)
	}
	if err := b.Delete(keyRestoring, nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	if err := f.db.Flush(); err != nil {
		return err
	}
	f.pins.reset()
	f.applied = applied
	return nil
}

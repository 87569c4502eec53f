package metadata

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"

	"github.com/magnetar-mq/magnetar/internal/wire"
)

// A Raft snapshot of the FSM is a stream of its Pebble keys and values:
//
//	magic "MGMETA" | format byte | records... | 0 (uvarint, end)
//	record: len(key) uvarint (> 0) | key | len(value) uvarint | value
//
// Every key lies under one of fsmPrefixes.
const (
	snapshotMagic  = "MGMETA"
	snapshotFormat = 1

	maxSnapshotKey   = 1 << 20
	maxSnapshotValue = 1 << 30
)

type fsmSnapshot struct{ snap *pebble.Snapshot }

// Persist writes the snapshot to sink, and cancels the sink on error.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := writeSnapshot(sink, s.snap); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("metadata: persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release frees the Pebble snapshot.
func (s *fsmSnapshot) Release() { _ = s.snap.Close() }

func writeSnapshot(w io.Writer, r pebble.Reader) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	bw.WriteString(snapshotMagic)
	bw.WriteByte(snapshotFormat)
	var buf []byte
	for _, p := range fsmPrefixes {
		it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte(p), UpperBound: prefixEnd([]byte(p))})
		if err != nil {
			return err
		}
		for it.First(); it.Valid(); it.Next() {
			val, err := it.ValueAndErr()
			if err != nil {
				_ = it.Close()
				return err
			}
			buf = wire.AppendBytes(wire.AppendBytes(buf[:0], it.Key()), val)
			if _, err := bw.Write(buf); err != nil {
				_ = it.Close()
				return err
			}
		}
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return err
		}
	}
	bw.Write(wire.AppendUvarint(buf[:0], 0))
	return bw.Flush()
}

// readSnapshot decodes a snapshot stream, calling fn for every key and value
// (valid only during the call). Malformed input gives an error wrapping
// ErrCorrupt.
func readSnapshot(r io.Reader, fn func(k, v []byte) error) error {
	br := bufio.NewReaderSize(r, 256<<10)
	head := make([]byte, len(snapshotMagic)+1)
	if _, err := io.ReadFull(br, head); err != nil {
		return corruptf("snapshot header: %v", err)
	}
	if string(head[:len(snapshotMagic)]) != snapshotMagic || head[len(snapshotMagic)] != snapshotFormat {
		return corruptf("not a metadata snapshot (header %q)", head)
	}
	var key, val []byte
	for {
		kl, err := binary.ReadUvarint(br)
		if err != nil {
			return corruptf("snapshot key length: %v", err)
		}
		if kl == 0 {
			break
		}
		if kl > maxSnapshotKey {
			return corruptf("snapshot key of %d bytes", kl)
		}
		if key, err = readN(br, key, kl); err != nil {
			return err
		}
		if !underFSMPrefix(key) {
			return corruptf("snapshot key %q outside the metadata key space", key)
		}
		vl, err := binary.ReadUvarint(br)
		if err != nil {
			return corruptf("snapshot value length: %v", err)
		}
		if vl > maxSnapshotValue {
			return corruptf("snapshot value of %d bytes", vl)
		}
		if val, err = readN(br, val, vl); err != nil {
			return err
		}
		if err := fn(key, val); err != nil {
			return err
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return corruptf("bytes after the end of the snapshot")
	}
	return nil
}

// readN reads n bytes into buf (grown if needed). The allocation grows with
// what is actually read, so a lying length cannot allocate a gigabyte.
func readN(r io.Reader, buf []byte, n uint64) ([]byte, error) {
	buf = buf[:0]
	for n > 0 {
		chunk := min(n, 64<<10)
		start := len(buf)
		buf = slices.Grow(buf, int(chunk))[:start+int(chunk)]
		if _, err := io.ReadFull(r, buf[start:]); err != nil {
			return nil, corruptf("snapshot truncated: %v", err)
		}
		n -= chunk
	}
	return buf, nil
}

func underFSMPrefix(k []byte) bool {
	for _, p := range fsmPrefixes {
		if bytes.HasPrefix(k, []byte(p)) {
			return true
		}
	}
	return false
}

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, strings.TrimSpace(fmt.Sprintf(format, args...)))
}

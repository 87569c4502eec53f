package raftstore

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/magnetar-mq/magnetar/internal/wire"
)

// recordVersion is the first byte of every encoded log record.
const recordVersion = 1

// ErrCorrupt means a stored log record or stable value could not be decoded.
var ErrCorrupt = errors.New("raftstore: corrupt record")

// appendLog appends the encoding of l (without its index, which lives in the
// key) to dst and returns the extended slice.
func appendLog(dst []byte, l *raft.Log) []byte {
	dst = append(dst, recordVersion, byte(l.Type))
	dst = wire.AppendUvarint(dst, l.Term)
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	dst = wire.AppendVarint(dst, at)
	dst = wire.AppendBytes(dst, l.Data)
	return wire.AppendBytes(dst, l.Extensions)
}

// decodeLog decodes a record written by appendLog into l, setting l.Index to
// index. Data and Extensions are copied: l does not alias b. Any malformed
// input (truncated, trailing bytes, unknown version, oversized lengths) gives
// an error wrapping ErrCorrupt, never a panic.
func decodeLog(index uint64, b []byte, l *raft.Log) error {
	r := wire.NewReader(b)
	if v := r.Byte(); r.Err() == nil && v != recordVersion {
		return fmt.Errorf("%w: unknown record version %d", ErrCorrupt, v)
	}
	typ := raft.LogType(r.Byte())
	term := r.Uvarint()
	at := r.Varint()
	data := r.Bytes()
	ext := r.Bytes()
	if err := r.Done(); err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	*l = raft.Log{
		Index:      index,
		Term:       term,
		Type:       typ,
		Data:       cloneBytes(data),
		Extensions: cloneBytes(ext),
	}
	if at != 0 {
		l.AppendedAt = time.Unix(0, at)
	}
	return nil
}

func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

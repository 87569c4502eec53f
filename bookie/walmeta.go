package bookie

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"os"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft-wal/types"
)

// walMeta is raft-wal's metadata store (types.MetaStore) kept in one small
// file, Dir/wal/wal-meta, on the shard's vfs.FS: the list of segment files
// that make up the log (raft-wal's PersistentState) and Raft's stable
// store (current term, last vote). raft-wal's own store is a BoltDB file
// opened straight on the OS, which the shard's tests could not put on a
// simulated disk (crashes, a full disk, byte counts), and WAL.Close leaves
// it open; this one has no open file between writes.
//
// It changes rarely: when the WAL rotates to a new segment or truncates
// (CommitState), and on elections (SetStable). Each change rewrites the
// whole file the classic way: write wal-meta.tmp, fsync it, rename it over
// wal-meta, fsync the directory. A crash leaves either the old file or the
// new one; Load ignores a leftover wal-meta.tmp. The file ends with a
// CRC-32C, so a corrupt file fails Load rather than lose the log's shape.
type walMeta struct {
	fs  vfs.FS
	dir string

	mu struct {
		sync.Mutex
		state  types.PersistentState
		stable map[string][]byte
	}
}

var _ types.MetaStore = (*walMeta)(nil)

const (
	walMetaFile = "wal-meta"
	walMetaTemp = "wal-meta.tmp"
	// maxWALMeta bounds the file Load reads: raft-wal's README puts even
	// 1,600 segments under 200 KiB.
	maxWALMeta = 64 << 20
)

var walMetaMagic = []byte("MGWALMT1")

var errBadWALMeta = errors.New("bookie: malformed wal-meta file")

func newWALMeta(fs vfs.FS, dir string) *walMeta {
	m := &walMeta{fs: fs, dir: dir}
	m.mu.stable = map[string][]byte{}
	return m
}

// Load implements types.MetaStore: it reads the persisted state, empty if
// there is no file yet.
func (m *walMeta) Load(dir string) (types.PersistentState, error) {
	if dir != m.dir {
		return types.PersistentState{}, fmt.Errorf("bookie: wal metadata of %s loaded for %s", m.dir, dir)
	}
	if err := m.fs.Remove(m.fs.PathJoin(m.dir, walMetaTemp)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return types.PersistentState{}, fmt.Errorf("bookie: removing a leftover %s: %w", walMetaTemp, err)
	}
	f, err := m.fs.Open(m.fs.PathJoin(m.dir, walMetaFile))
	if errors.Is(err, os.ErrNotExist) {
		return types.PersistentState{}, nil
	}
	if err != nil {
		return types.PersistentState{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxWALMeta+1))
	if err != nil {
		return types.PersistentState{}, err
	}
	if len(b) > maxWALMeta {
		return types.PersistentState{}, fmt.Errorf("%w: over %d bytes", errBadWALMeta, maxWALMeta)
	}
	st, stable, err := decodeWALMeta(b)
	if err != nil {
		return types.PersistentState{}, fmt.Errorf("%w (raft-wal's %w)", err, types.ErrCorrupt)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.state, m.mu.stable = st, stable
	return clonePersistentState(st), nil
}

// CommitState implements types.MetaStore: it returns once state is durable.
func (m *walMeta) CommitState(state types.PersistentState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.mu.state
	m.mu.state = clonePersistentState(state)
	if err := m.persistLocked(); err != nil {
		m.mu.state = old
		return err
	}
	return nil
}

// segments returns the log's segment files, oldest first.
func (m *walMeta) segments() []types.SegmentInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	segs := slices.Clone(m.mu.state.Segments)
	slices.SortFunc(segs, func(a, b types.SegmentInfo) int { return cmp.Compare(a.BaseIndex, b.BaseIndex) })
	return segs
}

// GetStable implements types.MetaStore; a missing key is nil, nil.
func (m *walMeta) GetStable(key []byte) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.mu.stable[string(key)]), nil
}

// SetStable implements types.MetaStore: it returns once the value is
// durable. A nil value deletes the key.
func (m *walMeta) SetStable(key, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, had := m.mu.stable[string(key)]
	if value == nil {
		delete(m.mu.stable, string(key))
	} else {
		m.mu.stable[string(key)] = bytes.Clone(value)
	}
	if err := m.persistLocked(); err != nil {
		if had {
			m.mu.stable[string(key)] = old
		} else {
			delete(m.mu.stable, string(key))
		}
		return err
	}
	return nil
}

// Close implements io.Closer. There is no file to close: each write opens
// and closes its own.
func (m *walMeta) Close() error { return nil }

// persistLocked writes the file (see walMeta).
func (m *walMeta) persistLocked() error {
	b, err := appendWALMeta(nil, m.mu.state, m.mu.stable)
	if err != nil {
		return err
	}
	tmp := m.fs.PathJoin(m.dir, walMetaTemp)
	f, err := m.fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("bookie: writing wal metadata: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = m.fs.Rename(tmp, m.fs.PathJoin(m.dir, walMetaFile))
	}
	if err == nil {
		err = syncDir(m.fs, m.dir)
	}
	if err != nil {
		return fmt.Errorf("bookie: writing wal metadata: %w", err)
	}
	return nil
}

// syncDir fsyncs a directory, so the entries created, renamed or removed in
// it survive a crash.
func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// appendWALMeta encodes the metadata file:
//
//	magic "MGWALMT1"
//	uvarint length | raft-wal's PersistentState as JSON (as its BoltDB store keeps it)
//	uvarint count of stable keys, then for each, in key order:
//	  uvarint key length | key | uvarint value length | value
//	CRC-32C (Castagnoli) of all bytes before it, u32 BE
func appendWALMeta(dst []byte, st types.PersistentState, stable map[string][]byte) ([]byte, error) {
	js, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("bookie: encoding wal metadata: %w", err)
	}
	start := len(dst)
	dst = append(dst, walMetaMagic...)
	dst = binary.AppendUvarint(dst, uint64(len(js)))
	dst = append(dst, js...)
	dst = binary.AppendUvarint(dst, uint64(len(stable)))
	for _, k := range slices.Sorted(maps.Keys(stable)) {
		dst = binary.AppendUvarint(dst, uint64(len(k)))
		dst = append(dst, k...)
		dst = binary.AppendUvarint(dst, uint64(len(stable[k])))
		dst = append(dst, stable[k]...)
	}
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli)), nil
}

// metaCursor reads the metadata file; after the first error every read
// returns zero values and err keeps that error.
type metaCursor struct {
	b   []byte
	err error
}

func (c *metaCursor) uvarint(what string) uint64 {
	if c.err != nil {
		return 0
	}
	v, n := binary.Uvarint(c.b)
	if n <= 0 {
		c.err = fmt.Errorf("%w: bad %s", errBadWALMeta, what)
		return 0
	}
	c.b = c.b[n:]
	return v
}

func (c *metaCursor) bytes(n uint64, what string) []byte {
	if c.err != nil {
		return nil
	}
	if n > uint64(len(c.b)) {
		c.err = fmt.Errorf("%w: %s of %d bytes, %d left", errBadWALMeta, what, n, len(c.b))
		return nil
	}
	v := c.b[:n:n]
	c.b = c.b[n:]
	return v
}

// decodeWALMeta decodes what appendWALMeta wrote.
func decodeWALMeta(b []byte) (types.PersistentState, map[string][]byte, error) {
	var st types.PersistentState
	if len(b) < len(walMetaMagic)+4 || !bytes.Equal(b[:len(walMetaMagic)], walMetaMagic) {
		return st, nil, fmt.Errorf("%w: bad magic", errBadWALMeta)
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return st, nil, fmt.Errorf("%w: checksum %#08x, computed %#08x", errBadWALMeta, sum, got)
	}
	c := metaCursor{b: body[len(walMetaMagic):]}
	js := c.bytes(c.uvarint("state length"), "state")
	n := c.uvarint("stable key count")
	if c.err != nil {
		return st, nil, c.err
	}
	if n > uint64(len(c.b)) {
		return st, nil, fmt.Errorf("%w: %d stable keys in %d bytes", errBadWALMeta, n, len(c.b))
	}
	stable := make(map[string][]byte, n)
	for range n {
		k := c.bytes(c.uvarint("key length"), "key")
		v := c.bytes(c.uvarint("value length"), "value")
		if c.err != nil {
			return st, nil, c.err
		}
		stable[string(k)] = bytes.Clone(v)
	}
	if len(c.b) != 0 {
		return st, nil, fmt.Errorf("%w: %d bytes after the stable keys", errBadWALMeta, len(c.b))
	}
	if err := json.Unmarshal(js, &st); err != nil {
		return st, nil, fmt.Errorf("%w: state: %w", errBadWALMeta, err)
	}
	return st, stable, nil
}

func clonePersistentState(st types.PersistentState) types.PersistentState {
	st.Segments = slices.Clone(st.Segments)
	return st
}

package raftstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// ErrKeyNotFound is returned by Get and GetUint64 for a key that was never
// set. Its text must stay "not found": hashicorp/raft recognises a missing
// stable-store key by that exact string.
var ErrKeyNotFound = errors.New("not found")

// ErrEmptyPrefix is returned by New for an empty key prefix.
var ErrEmptyPrefix = errors.New("raftstore: empty key prefix")

const (
	logTag    = 'l'
	stableTag = 's'
)

var (
	_ raft.LogStore    = (*Store)(nil)
	_ raft.StableStore = (*Store)(nil)
)

// Store implements raft.LogStore and raft.StableStore on a Pebble DB under a
// key prefix, so the Raft log can share one Pebble DB (one WAL, one fsync)
// with the FSM's state. It does not own the DB: closing the DB is the
// caller's job, after Raft has shut down.
type Store struct {
	db *pebble.DB

	logLower []byte // P'l': the first possible log key
	logUpper []byte // P'm': just past the last possible log key
	stable   []byte // P's'

	// first and last cache the first and last log index (0, 0 when empty).
	// They are written only with mu held, after the write is committed.
	first atomic.Uint64
	last  atomic.Uint64

	mu struct {
		sync.Mutex
		scratch []byte // record encoding buffer reused by StoreLogs
	}
}

// New returns a Store keeping its keys under prefix in db. The prefix must be
// non-empty and must not be a prefix of another Store's prefix in db.
func New(db *pebble.DB, prefix []byte) (*Store, error) {
	if len(prefix) == 0 {
		return nil, ErrEmptyPrefix
	}
	p := bytes.Clone(prefix)
	s := &Store{
		db:       db,
		logLower: append(bytes.Clone(p), logTag),
		logUpper: append(bytes.Clone(p), logTag+1),
		stable:   append(bytes.Clone(p), stableTag),
	}
	if err := s.loadBounds(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) logKey(index uint64) []byte {
	return s.appendLogKey(make([]byte, 0, len(s.logLower)+8), index)
}

func (s *Store) appendLogKey(dst []byte, index uint64) []byte {
	dst = append(dst, s.logLower...)
	return binary.BigEndian.AppendUint64(dst, index)
}

func (s *Store) indexOf(key []byte) (uint64, error) {
	if len(key) != len(s.logLower)+8 {
		return 0, fmt.Errorf("%w: log key of %d bytes", ErrCorrupt, len(key))
	}
	return binary.BigEndian.Uint64(key[len(s.logLower):]), nil
}

// loadBounds reads the first and last log index from Pebble into the cache.
// Callers other than New must hold mu.
func (s *Store) loadBounds() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: s.logLower, UpperBound: s.logUpper})
	if err != nil {
		return fmt.Errorf("raftstore: %w", err)
	}
	var first, last uint64
	if it.First() {
		if first, err = s.indexOf(it.Key()); err == nil && it.Last() {
			last, err = s.indexOf(it.Key())
		}
	}
	if err == nil {
		err = it.Error()
	}
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("raftstore: reading log bounds: %w", err)
	}
	s.first.Store(first)
	s.last.Store(last)
	return nil
}

// FirstIndex returns the index of the first stored log, 0 when there is none.
func (s *Store) FirstIndex() (uint64, error) { return s.first.Load(), nil }

// LastIndex returns the index of the last stored log, 0 when there is none.
func (s *Store) LastIndex() (uint64, error) { return s.last.Load(), nil }

// GetLog reads the log at index into l, or returns raft.ErrLogNotFound.
func (s *Store) GetLog(index uint64, l *raft.Log) error {
	val, closer, err := s.db.Get(s.logKey(index))
	if errors.Is(err, pebble.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return fmt.Errorf("raftstore: get log %d: %w", index, err)
	}
	err = decodeLog(index, val, l)
	_ = closer.Close()
	if err != nil {
		return fmt.Errorf("raftstore: log %d: %w", index, err)
	}
	return nil
}

// StoreLog stores one log entry durably.
func (s *Store) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs stores the entries in one Pebble batch committed with
// pebble.Sync: all of them are durable when it returns, or none is visible.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	first, last := s.first.Load(), s.last.Load()
	var key [64]byte
	for _, l := range logs {
		s.mu.scratch = appendLog(s.mu.scratch[:0], l)
		if err := b.Set(s.appendLogKey(key[:0], l.Index), s.mu.scratch, nil); err != nil {
			return fmt.Errorf("raftstore: store log %d: %w", l.Index, err)
		}
		if first == 0 || l.Index < first {
			first = l.Index
		}
		last = max(last, l.Index)
	}
	if cap(s.mu.scratch) > 1<<20 {
		s.mu.scratch = nil // do not pin one huge entry's buffer
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("raftstore: store logs: %w", err)
	}
	s.first.Store(first)
	s.last.Store(last)
	return nil
}

// DeleteRange deletes the logs with lo <= index <= hi using one Pebble
// range delete, committed with pebble.Sync.
func (s *Store) DeleteRange(lo, hi uint64) error {
	if lo > hi {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	end := s.logUpper
	if hi < math.MaxUint64 {
		end = s.logKey(hi + 1)
	}
	if err := s.db.DeleteRange(s.logKey(lo), end, pebble.Sync); err != nil {
		return fmt.Errorf("raftstore: delete logs [%d, %d]: %w", lo, hi, err)
	}
	return s.loadBounds()
}

func (s *Store) stableKey(key []byte) []byte {
	k := make([]byte, 0, len(s.stable)+len(key))
	return append(append(k, s.stable...), key...)
}

// Set stores val under key, durably.
func (s *Store) Set(key, val []byte) error {
	if err := s.db.Set(s.stableKey(key), val, pebble.Sync); err != nil {
		return fmt.Errorf("raftstore: set %q: %w", key, err)
	}
	return nil
}

// Get returns the value stored under key, or ErrKeyNotFound. The value of a
// present key is never nil, even when it is empty.
func (s *Store) Get(key []byte) ([]byte, error) {
	val, closer, err := s.db.Get(s.stableKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("raftstore: get %q: %w", key, err)
	}
	out := append([]byte{}, val...)
	_ = closer.Close()
	return out, nil
}

// SetUint64 stores val under key (8 bytes big-endian), durably. Set and
// SetUint64 share one key space.
func (s *Store) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 returns the number stored under key by SetUint64, or
// ErrKeyNotFound.
func (s *Store) GetUint64(key []byte) (uint64, error) {
	val, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(val) != 8 {
		return 0, fmt.Errorf("raftstore: uint64 %q: %w: %d bytes", key, ErrCorrupt, len(val))
	}
	return binary.BigEndian.Uint64(val), nil
}

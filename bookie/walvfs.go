package bookie

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft-wal/types"
)

// walVFS puts raft-wal's segment files on a Pebble vfs.FS (raft-wal's
// types.VFS), so the Raft log lives on the same file system as the state:
// the OS's in production, a simulated one in tests (crashes, a small disk,
// byte counts). It does what raft-wal's own OS implementation does for
// durability: a new segment is preallocated, and its directory is fsynced
// at the first Sync of the file (raft-wal syncs before it acknowledges the
// first entry in it), and again after a segment is deleted.
type walVFS struct {
	fs vfs.FS
	// syncs counts the fsyncs of segment files: one per StoreLogs.
	syncs *atomic.Uint64
}

var _ types.VFS = walVFS{}

// ListDir implements types.VFS.
func (v walVFS) ListDir(dir string) ([]string, error) {
	names, err := v.fs.List(dir)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// Create implements types.VFS: it creates a new file (failing if one
// exists) and preallocates size bytes for it where the file system can.
func (v walVFS) Create(dir, name string, size uint64) (types.WritableFile, error) {
	path := v.fs.PathJoin(dir, name)
	if _, err := v.fs.Stat(path); err == nil {
		return nil, fmt.Errorf("bookie: creating wal segment %s: %w", path, os.ErrExist)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	f, err := v.fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, err
	}
	if size > 0 {
		err := f.Preallocate(0, int64(size))
		if err != nil && !errors.Is(err, syscall.EOPNOTSUPP) && !errors.Is(err, syscall.ENOTSUP) {
			return nil, errors.Join(fmt.Errorf("bookie: preallocating wal segment %s: %w", path, err), f.Close(), v.fs.Remove(path))
		}
	}
	return &walFile{File: f, v: v, dir: dir, newFile: true}, nil
}

// Delete implements types.VFS.
func (v walVFS) Delete(dir, name string) error {
	if err := v.fs.Remove(v.fs.PathJoin(dir, name)); err != nil {
		return err
	}
	return syncDir(v.fs, dir)
}

// OpenReader implements types.VFS.
func (v walVFS) OpenReader(dir, name string) (types.ReadableFile, error) {
	return v.fs.Open(v.fs.PathJoin(dir, name))
}

// OpenWriter implements types.VFS: it opens an existing file for reading
// and writing, and fails with an error wrapping os.ErrNotExist if there is
// none (raft-wal then knows the tail segment was never made durable).
func (v walVFS) OpenWriter(dir, name string) (types.WritableFile, error) {
	path := v.fs.PathJoin(dir, name)
	if _, err := v.fs.Stat(path); err != nil {
		return nil, err
	}
	f, err := v.fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, err
	}
	return &walFile{File: f, v: v, dir: dir}, nil
}

// walFile is a segment file; raft-wal writes it with WriteAt and Sync.
type walFile struct {
	vfs.File
	v   walVFS
	dir string
	// newFile is set until the first Sync of a file Create made, which
	// also syncs its directory entry.
	newFile bool
}

// Sync makes the data written so far durable (fdatasync: the file's size
// is included, its times are not), and the first time after Create the
// directory entry too.
func (f *walFile) Sync() error {
	if err := f.File.SyncData(); err != nil {
		return err
	}
	f.v.syncs.Add(1)
	if f.newFile {
		if err := syncDir(f.v.fs, f.dir); err != nil {
			return err
		}
		f.newFile = false
	}
	return nil
}

package tiered

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
)

// localTempDir is the directory under a LocalStore's root where Put writes
// an object before renaming it into place. Keys cannot name it (no key part
// starts with '.'), and NewLocalStore empties it.
const localTempDir = ".tmp"

// LocalStore is an ObjectStore in a directory of the local file system:
// the object "a/b/c" is the file ROOT/a/b/c. It needs no setup, which makes
// it the default store of a single-node deployment; its objects are as
// durable as the disk.
//
// Put writes a temporary file under ROOT/.tmp, fsyncs it, renames it over
// the key's file and fsyncs the key's directory, so an object is whole and
// durable once Put returns. Delete fsyncs the directory too. Directories
// left empty by Delete stay (removing them would race with a Put into
// them); List skips them.
//
// Every file operation goes through an os.Root, so no key, symbolic link
// or race with a renamed directory reaches outside ROOT. One LocalStore at
// a time may use a directory: NewLocalStore deletes the temporary files a
// crashed process left, and would delete another store's too.
//
// List reads one directory at a time, whole (os.ReadDir), so a directory
// of a million objects costs that many names in memory while it is listed.
type LocalStore struct {
	root *os.Root
}

var _ ObjectStore = (*LocalStore)(nil)

// NewLocalStore opens (creating it if needed) the directory dir as a
// LocalStore and removes the temporary files of Puts that did not finish.
func NewLocalStore(dir string) (*LocalStore, error) {
	if dir == "" {
		return nil, errors.New("tiered: local store: empty directory name")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tiered: local store: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("tiered: local store: %w", err)
	}
	if err := root.RemoveAll(localTempDir); err != nil {
		root.Close()
		return nil, fmt.Errorf("tiered: local store: clearing %s: %w", localTempDir, err)
	}
	if err := root.Mkdir(localTempDir, 0o755); err != nil {
		root.Close()
		return nil, fmt.Errorf("tiered: local store: %w", err)
	}
	return &LocalStore{root: root}, nil
}

// Close closes the store's directory.
func (s *LocalStore) Close() error { return s.root.Close() }

// Put implements ObjectStore.
func (s *LocalStore) Put(ctx context.Context, key string, r io.Reader, size int64) (err error) {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("tiered: put %q: negative size %d", key, size)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tiered: put %q: %w", key, err)
	}
	dir := path.Dir(key)
	if err := s.root.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("tiered: put %q: %w", key, err)
	}
	tmp, f, err := s.createTemp()
	if err != nil {
		return fmt.Errorf("tiered: put %q: %w", key, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			s.root.Remove(tmp)
		}
	}()
	written, err := io.CopyN(f, ctxReader{ctx: ctx, r: r}, size)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("reader ended after %d of %d bytes: %w", written, size, io.ErrUnexpectedEOF)
		}
		return fmt.Errorf("tiered: put %q: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("tiered: put %q: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("tiered: put %q: %w", key, err)
	}
	if err := s.root.Rename(tmp, key); err != nil {
		return fmt.Errorf("tiered: put %q: %w", key, err)
	}
	if err := s.syncDir(dir); err != nil {
		return fmt.Errorf("tiered: put %q: %w", key, err)
	}
	return nil
}

// createTemp creates a new file under localTempDir with a random name.
func (s *LocalStore) createTemp() (string, *os.File, error) {
	var b [12]byte
	for {
		rand.Read(b[:])
		name := localTempDir + "/" + hex.EncodeToString(b[:])
		f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return name, f, err
	}
}

// syncDir fsyncs a directory, making the renames and removals in it
// durable.
func (s *LocalStore) syncDir(dir string) error {
	d, err := s.root.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// GetRange implements ObjectStore.
func (s *LocalStore) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tiered: get %q: %w", key, err)
	}
	f, err := s.root.Open(key)
	if err != nil {
		return nil, notFound("get", key, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fs.ErrNotExist
	}
	if err != nil {
		f.Close()
		return nil, notFound("get", key, err)
	}
	size := fi.Size()
	if off < 0 || off > size {
		f.Close()
		return nil, fmt.Errorf("%w: get %q from %d: the object has %d bytes", ErrOutOfRange, key, off, size)
	}
	if n < 0 || n > size-off {
		n = size - off
	}
	return &localReader{r: ctxReader{ctx: ctx, r: io.NewSectionReader(f, off, n)}, f: f}, nil
}

// localReader reads a section of an open file and closes the file.
type localReader struct {
	r io.Reader
	f *os.File
}

func (l *localReader) Read(p []byte) (int, error) { return l.r.Read(p) }
func (l *localReader) Close() error               { return l.f.Close() }

// Stat implements ObjectStore.
func (s *LocalStore) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, fmt.Errorf("tiered: stat %q: %w", key, err)
	}
	fi, err := s.root.Stat(key)
	if err == nil && !fi.Mode().IsRegular() {
		err = fs.ErrNotExist
	}
	if err != nil {
		return ObjectInfo{}, notFound("stat", key, err)
	}
	return ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete implements ObjectStore.
func (s *LocalStore) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tiered: delete %q: %w", key, err)
	}
	fi, err := s.root.Lstat(key)
	if err != nil || fi.IsDir() {
		if err == nil || isNotExist(err) {
			return nil // absent; a directory is no object
		}
		return fmt.Errorf("tiered: delete %q: %w", key, err)
	}
	if err := s.root.Remove(key); err != nil {
		if isNotExist(err) {
			return nil
		}
		return fmt.Errorf("tiered: delete %q: %w", key, err)
	}
	if err := s.syncDir(path.Dir(key)); err != nil {
		return fmt.Errorf("tiered: delete %q: %w", key, err)
	}
	return nil
}

// List implements ObjectStore: it walks the directory the prefix names
// (its part before the last '/'), sorting each directory's entries so that
// keys come in byte order.
func (s *LocalStore) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if err := validatePrefix(prefix); err != nil {
		return err
	}
	dir := "."
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dir = prefix[:i]
	}
	return s.walk(ctx, dir, prefix, fn)
}

// walk lists the objects under dir (a key's directory, or ".") whose keys
// have prefix. Within a directory, a subdirectory d sorts as "d/": every
// key under it starts so, and no file name holds a '/', so the order of
// the walk is the byte order of the keys.
func (s *LocalStore) walk(ctx context.Context, dir, prefix string, fn func(ObjectInfo) error) error {
	entries, err := fs.ReadDir(s.root.FS(), dir)
	if err != nil {
		if isNotExist(err) {
			return nil // no such directory (or a file): no key under it
		}
		return fmt.Errorf("tiered: list %q: %w", prefix, err)
	}
	sortName := func(e fs.DirEntry) string {
		if e.IsDir() {
			return e.Name() + "/"
		}
		return e.Name()
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(sortName(a), sortName(b)) })
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("tiered: list %q: %w", prefix, err)
		}
		if strings.HasPrefix(e.Name(), ".") {
			continue // the temporary directory, or no object of ours
		}
		key := e.Name()
		if dir != "." {
			key = dir + "/" + key
		}
		switch {
		case e.IsDir():
			sub := key + "/"
			if !strings.HasPrefix(sub, prefix) && !strings.HasPrefix(prefix, sub) {
				continue
			}
			if err := s.walk(ctx, key, prefix, fn); err != nil {
				return err
			}
		case e.Type().IsRegular() && strings.HasPrefix(key, prefix):
			fi, err := e.Info()
			if isNotExist(err) {
				continue // deleted while listed
			}
			if err != nil {
				return fmt.Errorf("tiered: list %q: %w", prefix, err)
			}
			if err := fn(ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// isNotExist reports an error that means "no such file": the file or one
// of its directories is missing, or a "directory" on its path is a file.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// notFound wraps a file error, as ErrNotFound when it means the object is
// absent.
func notFound(op, key string, err error) error {
	if isNotExist(err) {
		return fmt.Errorf("%w: %s %q", ErrNotFound, op, key)
	}
	return fmt.Errorf("tiered: %s %q: %w", op, key, err)
}

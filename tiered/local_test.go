package tiered_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/magnetar-mq/magnetar/tiered"
	"github.com/magnetar-mq/magnetar/tiered/storetest"
)

func newLocalStore(t *testing.T) tiered.ObjectStore {
	t.Helper()
	s, err := tiered.NewLocalStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestLocalStoreConformance(t *testing.T) {
	storetest.RunConformance(t, newLocalStore)
}

func TestLocalStoreKeepsObjectsAsFilesUnderItsDirectory(t *testing.T) {
	dir := t.TempDir()
	s, err := tiered.NewLocalStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(t.Context(), "a/b/c", strings.NewReader("hello"), 5); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a", "b", "c")); err != nil || string(b) != "hello" {
		t.Fatalf("file a/b/c holds %q, %v; want hello", b, err)
	}
	if entries, err := os.ReadDir(filepath.Join(dir, ".tmp")); err != nil || len(entries) != 0 {
		t.Fatalf("temporary directory after a put: %d entries, %v; want none", len(entries), err)
	}
}

func TestLocalStoreRemovesTheTemporaryFilesOfUnfinishedPuts(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, ".tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".tmp", "0123"), []byte("half an object"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := tiered.NewLocalStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if entries, err := os.ReadDir(filepath.Join(dir, ".tmp")); err != nil || len(entries) != 0 {
		t.Fatalf("temporary directory after open: %d entries, %v; want none", len(entries), err)
	}
}

func TestLocalStoreDoesNotFollowSymlinksOutOfItsDirectory(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "evil")); err != nil {
		t.Fatal(err)
	}
	s, err := tiered.NewLocalStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rc, err := s.GetRange(t.Context(), "evil/secret", 0, -1); err == nil {
		rc.Close()
		t.Fatal("GetRange read a file outside the store's directory")
	}
	if _, err := s.Stat(t.Context(), "evil/secret"); err == nil {
		t.Fatal("Stat found a file outside the store's directory")
	}
	if err := s.Put(t.Context(), "evil/planted", strings.NewReader("x"), 1); err == nil {
		t.Fatal("Put wrote through a symlink out of the store's directory")
	}
	if _, err := os.Stat(filepath.Join(outside, "planted")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a file was planted outside the store: %v", err)
	}
	if err := s.Delete(t.Context(), "evil/secret"); err == nil {
		t.Fatal("Delete through a symlink out of the store's directory reported success")
	}
	if _, err := os.Stat(filepath.Join(outside, "secret")); err != nil {
		t.Fatalf("Delete removed a file outside the store: %v", err)
	}
	err = s.List(t.Context(), "", func(oi tiered.ObjectInfo) error { return fmt.Errorf("listed %q", oi.Key) })
	if err != nil {
		t.Fatal(err)
	}
}

func TestLocalStoreRefusesAKeyThatIsADirectoryOfOthers(t *testing.T) {
	s := newLocalStore(t)
	if err := s.Put(t.Context(), "a/b", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "a", strings.NewReader("y"), 1); err == nil {
		t.Fatal("Put of a, a directory of a/b, succeeded")
	}
	if err := s.Put(t.Context(), "a/b/c", strings.NewReader("z"), 1); err == nil {
		t.Fatal("Put of a/b/c, below the object a/b, succeeded")
	}
	rc, err := s.GetRange(t.Context(), "a/b", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); string(b) != "x" {
		t.Fatalf("a/b holds %q after the refused puts, want x", b)
	}
}

package tests

import (
	"os"
	"os/exec"
	"testing"
)

// mountTmpfs mounts a tmpfs of the given size (e.g. "64m") on a new
// directory, unmounted when the test ends: a small disk that fills up. It
// skips the test if mounting is not permitted (not root, no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("this test needs a small disk and cannot mount a tmpfs here (%v: %s); run it as root", err, out)
	}
	// Registered after t.TempDir's removal, so it runs before it.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// writeBallast fills n bytes of the directory's disk with a file and
// returns its path; removing it frees the space.
func writeBallast(t *testing.T, dir string, n int) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "ballast-*")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

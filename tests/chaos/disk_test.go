package chaos

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A run whose test process died without cleanup (killed at -test.timeout)
// leaves its tmpfs mounted and its directory behind: the next run removes
// both, and leaves the directories of live test processes alone.
func TestStaleRunsAreRemoved(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount)")
	}
	dir := t.TempDir()
	dead := filepath.Join(dir, "magnetar-chaos-2147483646-x") // no such pid
	live := filepath.Join(dir, baseDirPrefix()+"y")
	for _, d := range []string{filepath.Join(dead, "b1"), live} {
		must(t, os.MkdirAll(d, 0o755))
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", filepath.Join(dead, "b1")).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v: %s", err, out)
	}
	removeStaleRuns(t, dir)
	if mounts, _ := os.ReadFile("/proc/self/mounts"); strings.Contains(string(mounts), dead) {
		_ = exec.Command("umount", filepath.Join(dead, "b1")).Run()
		t.Fatal("the stale tmpfs is still mounted")
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the stale directory is still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the live run's directory was removed: %v", err)
	}
}

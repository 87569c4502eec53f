package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// diskFault fills the file system of one bookie's data directory, a tmpfs
// of its own, with a ballast file until less than half the bookie's
// free-space reserve (--min-free-bytes) is left: the bookie must see its
// disk as full (a leader refuses appends) while what it has accepted still
// fits. Removing the ballast frees it. The tmpfs is unmounted in cleanup.
type diskFault struct {
	dir     string
	ballast string
}

func newDiskFault(t testing.TB, dir string, size int64) *diskFault {
	t.Helper()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0755", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("mounting a tmpfs on %s: %v: %s", dir, err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("unmounting %s: %v: %s", dir, err, out)
		}
	})
	// The ballast sits beside the bookie's shards, owned by root.
	return &diskFault{dir: dir, ballast: filepath.Join(dir, "chaos-ballast")}
}

// available returns the bytes an unprivileged writer can still use.
func (d *diskFault) available() (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// fill grows the ballast until leave bytes are available.
func (d *diskFault) fill(leave int64) error {
	avail, err := d.available()
	if err != nil {
		return err
	}
	if avail <= leave {
		return nil
	}
	f, err := os.OpenFile(d.ballast, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	// fallocate takes the pages on tmpfs as a write would.
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, st.Size()+avail-leave); err != nil {
		return fmt.Errorf("allocating the ballast: %w", err)
	}
	return nil
}

// free removes the ballast.
func (d *diskFault) free() error {
	if err := os.Remove(d.ballast); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// baseDirPrefix names the directories of test runs: the pid tells a stale
// one (its test process died without cleanup, e.g. at -test.timeout) from
// one in use.
func baseDirPrefix() string { return fmt.Sprintf("magnetar-chaos-%d-", os.Getpid()) }

var baseDirName = regexp.MustCompile(`^magnetar-chaos-(\d+)-[^/]*$`)

// removeStaleRuns unmounts the tmpfs mounts and removes the directories
// that test processes which are gone left under dir.
func removeStaleRuns(t testing.TB, dir string) {
	stale := func(base string) bool {
		m := baseDirName.FindStringSubmatch(base)
		if m == nil {
			return false
		}
		pid, _ := strconv.Atoi(m[1])
		return syscall.Kill(pid, 0) == syscall.ESRCH
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	for line := range strings.SplitSeq(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[2] != "tmpfs" || filepath.Dir(filepath.Dir(f[1])) != dir || !stale(filepath.Base(filepath.Dir(f[1]))) {
			continue
		}
		t.Logf("unmounting %s, left by a test process that is gone", f[1])
		_ = exec.Command("umount", f[1]).Run()
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() && stale(e.Name()) {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

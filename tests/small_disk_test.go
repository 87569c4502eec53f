package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/client"
)

// smallDiskFlags size a standalone's disk use for 64 MiB: 4 MiB bookie log
// segments and memtables, and 8 MiB free space reserves.
var smallDiskFlags = []string{
	"--bookie.wal-segment-size", "4194304", "--bookie.min-free-bytes", "8388608", "--bookie.memtable-size", "4194304",
	"--meta.memtable-size", "4194304", "--meta.min-free-bytes", "8388608",
}

// A standalone on a 64 MiB disk starts (with the defaults the bookie
// preallocates a 64 MiB log segment and keeps 256 MiB free, so it cannot)
// and serves produce and consume.
func TestAStandaloneOnA64MiBDiskServesProduceAndConsume(t *testing.T) {
	skipIfShort(t)
	const n = 1000
	disk := mountTmpfs(t, "64m")
	srv := startServer(t, filepath.Join(disk, "data"), smallDiskFlags...)
	ctx := testContext(t, 2*time.Minute)

	c, err := client.New(client.Options{Address: srv.nativeAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: "small-disk"})
	if err != nil {
		t.Fatal(err)
	}
	sendAll(ctx, t, p, n)
	p.Close()
	cons, err := c.Subscribe(ctx, client.ConsumerOptions{Topic: "small-disk", Subscription: "s", InitialPosition: client.Earliest})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for i := range n {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(m.Value), fmt.Sprintf("v-%d", i); got != want {
			t.Fatalf("message %d = %q, want %q", i, got, want)
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(disk, &st); err == nil {
		t.Logf("%d messages produced and consumed; %d KiB of the 64 MiB disk in use", n, (st.Blocks-st.Bavail)*uint64(st.Bsize)>>10)
	}
}

// The disk settings come from flags, MAGNETAR_* variables or the YAML
// file like every other, and a standalone refuses to start with ones that
// cannot work, saying which.
func TestAStandaloneRefusesDiskSettingsThatCannotWork(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	yaml := filepath.Join(t.TempDir(), "magnetar.yaml")
	if err := os.WriteFile(yaml, []byte("bookie:\n  wal-segment-size: 4194304\n  min-free-bytes: 1048576\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"a log segment under 1 MiB", []string{"--bookie.wal-segment-size", "1000"}, "", "wal segment size 1000 is not between 1 MiB and 1 GiB"},
		{"a bookie reserve that holds no log segment (YAML)", []string{"--config", yaml}, "", "must hold a wal segment"},
		{"a metadata reserve that holds no memtable (environment)", nil, "MAGNETAR_META_MIN_FREE_BYTES=1048576", "must hold a memtable"},
		{"a metadata memtable under 1 MiB", []string{"--meta.memtable-size", "1000"}, "", "memtable size 1000 is not between 1 MiB and 4 GiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(binDir, "magnetar"), append([]string{"standalone", "--data-dir", t.TempDir(),
				"--native-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--kafka.listen-addr", "127.0.0.1:0"}, tc.args...)...)
			cmd.Env = os.Environ()
			if tc.env != "" {
				cmd.Env = append(cmd.Env, tc.env)
			}
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Fatalf("magnetar standalone %v (%s): %v, output:\n%s\nwant a failure saying %q", tc.args, tc.env, err, out, tc.want)
			}
		})
	}
}

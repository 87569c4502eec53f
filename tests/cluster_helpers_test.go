package tests

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/internal/nettest"
)

// roleNode is one process of a replicated role under test: a `magnetar
// meta` node or a `magnetar bookie` replica, started with --node-id,
// --data-dir, --raft-addr, --grpc-addr and --peers.
type roleNode struct {
	t        testing.TB
	role     string // the subcommand: "meta" or "bookie"
	id       string
	dataDir  string
	raftAddr string
	grpcAddr string
	logPath  string
	cmd      *exec.Cmd
	ready    chan struct{} // closed when it logs "magnetar <role> ready"
	exited   chan struct{}
}

// startRoleCluster starts n `magnetar <role>` processes on 127.0.0.1 as
// one Raft group, with IDs idPrefix1..idPrefixN, and waits until each says
// it is ready (a leader is elected). It returns the nodes and the --peers
// value (to restart a node with).
func startRoleCluster(t testing.TB, role, idPrefix string, n int) ([]*roleNode, string) {
	t.Helper()
	addrs := nettest.FreeAddrs(t, 2*n)
	var nodes []*roleNode
	var peers []string
	for i := range n {
		r := &roleNode{t: t, role: role, id: fmt.Sprintf("%s%d", idPrefix, i+1), dataDir: filepath.Join(t.TempDir(), role),
			raftAddr: addrs[2*i], grpcAddr: addrs[2*i+1]}
		nodes = append(nodes, r)
		peers = append(peers, r.id+"="+r.raftAddr+"="+r.grpcAddr)
	}
	p := strings.Join(peers, ",")
	for _, r := range nodes {
		r.start(p)
	}
	for _, r := range nodes {
		r.waitReady()
	}
	return nodes, p
}

// start runs the process (again, after a kill: same data directory).
func (r *roleNode) start(peers string) {
	t := r.t
	t.Helper()
	logFile, err := os.CreateTemp(t.TempDir(), r.role+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	r.logPath = logFile.Name()
	r.cmd = exec.Command(filepath.Join(binDir, "magnetar"), r.role, "--node-id", r.id, "--data-dir", r.dataDir,
		"--raft-addr", r.raftAddr, "--grpc-addr", r.grpcAddr, "--peers", peers, "--election-timeout", "300ms")
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The goroutines use this run's channels and command, not r's fields,
	// which a restart replaces.
	ready, exited := make(chan struct{}), make(chan struct{})
	r.ready, r.exited = ready, exited
	cmd := r.cmd
	readyLine := `msg="magnetar ` + r.role + ` ready"`
	var copied sync.WaitGroup
	copied.Add(1)
	go func() {
		defer copied.Done()
		defer logFile.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		seen := false
		for sc.Scan() {
			fmt.Fprintln(logFile, sc.Text())
			if !seen && strings.Contains(sc.Text(), readyLine) {
				seen = true
				close(ready)
			}
		}
		_, _ = io.Copy(logFile, stderr)
	}()
	go func() {
		copied.Wait()
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		r.kill()
		if t.Failed() {
			r.dumpLog()
		}
	})
}

func (r *roleNode) waitReady() {
	r.t.Helper()
	select {
	case <-r.ready:
	case <-r.exited:
		r.dumpLog()
		r.t.Fatalf("%s %s exited before it was ready: %v", r.role, r.id, r.cmd.ProcessState)
	case <-time.After(20 * time.Second):
		r.dumpLog()
		r.t.Fatalf("%s %s not ready within 20s", r.role, r.id)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (r *roleNode) kill() {
	select {
	case <-r.exited:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.exited
}

func (r *roleNode) dumpLog() {
	data, err := os.ReadFile(r.logPath)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	r.t.Logf("%s %s log (last %d lines):\n%s", r.role, r.id, len(lines), strings.Join(lines, "\n"))
}

// grpcAddrs returns the nodes' gRPC addresses, in order.
func grpcAddrs(nodes []*roleNode) []string {
	var out []string
	for _, r := range nodes {
		out = append(out, r.grpcAddr)
	}
	return out
}

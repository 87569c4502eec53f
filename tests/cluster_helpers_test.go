package tests

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/internal/nettest"
)

// roleNode is one process of a replicated role under test: a `magnetar
// meta` node or a `magnetar bookie` replica, started with --node-id,
// --data-dir, --raft-addr, --grpc-addr and --peers.
type roleNode struct {
	*process // the current run; a restart replaces it
	t        testing.TB
	role     string // the subcommand: "meta" or "bookie"
	id       string
	dataDir  string
	raftAddr string
	grpcAddr string
	ready    chan struct{} // closed when the current run logs "magnetar <role> ready"
	extra    []string      // more flags for every run
}

// startRoleCluster starts n `magnetar <role>` processes on 127.0.0.1 as
// one Raft group, with IDs idPrefix1..idPrefixN and the extra flags, and
// waits until each says
// it is ready (a leader is elected). It returns the nodes and the --peers
// value (to restart a node with).
func startRoleCluster(t testing.TB, role, idPrefix string, n int, extra ...string) ([]*roleNode, string) {
	t.Helper()
	addrs := nettest.FreeAddrs(t, 2*n)
	var nodes []*roleNode
	var peers []string
	for i := range n {
		r := &roleNode{t: t, role: role, id: fmt.Sprintf("%s%d", idPrefix, i+1), dataDir: filepath.Join(t.TempDir(), role),
			raftAddr: addrs[2*i], grpcAddr: addrs[2*i+1], extra: extra}
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
	args := []string{r.role, "--node-id", r.id, "--data-dir", r.dataDir,
		"--raft-addr", r.raftAddr, "--grpc-addr", r.grpcAddr, "--peers", peers, "--election-timeout", "300ms"}
	args = append(args, r.extra...)
	ready := make(chan struct{})
	var once sync.Once
	readyLine := `msg="magnetar ` + r.role + ` ready"`
	r.ready = ready
	r.process = startProcess(t, r.role+" "+r.id, args, func(line string) {
		if strings.Contains(line, readyLine) {
			once.Do(func() { close(ready) })
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

// grpcAddrs returns the nodes' gRPC addresses, in order.
func grpcAddrs(nodes []*roleNode) []string {
	var out []string
	for _, r := range nodes {
		out = append(out, r.grpcAddr)
	}
	return out
}

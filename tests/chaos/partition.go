package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// netFaults cuts one node off from every other process on loopback with
// iptables rules in a chain of this test process's own, jumped to from
// OUTPUT (every packet on lo passes OUTPUT once):
//
//   - drop every packet a socket of the node's uid sends on lo: its
//     outgoing connections and its answers on accepted ones;
//   - drop every TCP packet to the node's listening ports: connection
//     attempts to it and whatever the others send on open connections
//     (also SYN-ACKs, which the owner match cannot attribute).
//
// Connections stay open but silent, as behind a real partition: each side
// learns of it only from its own timeouts. The chain is removed in
// cleanup, and chains left by test processes that died are removed at
// start.
type netFaults struct {
	t     testing.TB
	chain string

	mu struct {
		sync.Mutex
		cut *node // the node cut off, or nil
	}
}

const chainPrefix = "MAGNETAR-CHAOS-"

func newNetFaults(t testing.TB) *netFaults {
	t.Helper()
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Fatalf("the network partition needs iptables: %v", err)
	}
	removeStaleChains(t)
	n := &netFaults{t: t, chain: chainPrefix + strconv.Itoa(os.Getpid())}
	if err := iptables("-N", n.chain); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeChain(t, n.chain) })
	if err := iptables("-I", "OUTPUT", "-j", n.chain); err != nil {
		t.Fatal(err)
	}
	return n
}

var chainLine = regexp.MustCompile(`^-N (` + chainPrefix + `(\d+))$`)

// removeStaleChains deletes the chains of test processes that are gone.
func removeStaleChains(t testing.TB) {
	out, err := exec.Command("iptables", "-w", "-S").Output()
	if err != nil {
		t.Fatalf("iptables -S: %v", err)
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		m := chainLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[2])
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			t.Logf("removing the chain %s left by a test process that is gone", m[1])
			removeChain(t, m[1])
		}
	}
}

func removeChain(t testing.TB, chain string) {
	for range 3 { // each jump, should it have been added more than once
		if iptables("-D", "OUTPUT", "-j", chain) != nil {
			break
		}
	}
	if err := iptables("-F", chain); err != nil {
		t.Logf("flushing %s: %v", chain, err)
	}
	if err := iptables("-X", chain); err != nil {
		t.Logf("deleting %s: %v", chain, err)
	}
}

func iptables(args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// isolate cuts nd off from every other process.
func (n *netFaults) isolate(nd *node) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := iptables("-A", n.chain, "-o", "lo", "-m", "owner", "--uid-owner", strconv.Itoa(nd.uid), "-j", "DROP"); err != nil {
		return err
	}
	if err := iptables("-A", n.chain, "-o", "lo", "-p", "tcp", "-m", "multiport", "--dports", strings.Join(nd.ports(), ","), "-j", "DROP"); err != nil {
		return err
	}
	n.mu.cut = nd
	return nil
}

// heal removes every rule.
func (n *netFaults) heal() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mu.cut = nil
	return iptables("-F", n.chain)
}

func (n *netFaults) isolated(nd *node) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.cut == nd
}

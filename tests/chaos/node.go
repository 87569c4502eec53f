package chaos

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// node is one magnetar process of the cluster (a meta node, a bookie or a
// broker) across its runs: the same flags, data directory, ports and uid
// every time it is (re)started. Its stdout and stderr go to one log file,
// each run starting with a header line.
type node struct {
	name    string // m1, b2, br1: also its --node-id / --broker.id base
	role    string // "meta", "bookie" or "broker"
	uid     int    // the process runs as this uid (and gid): the network partition matches it
	dataDir string
	addrs   map[string]string // listen address by use: raft, grpc, http, native, kafka
	args    []string
	logPath string
	spawn   *spawner

	mu struct {
		sync.Mutex
		run     *run
		runs    int
		crashes []crash // exits nobody asked for
	}
}

// run is one process of a node.
type run struct {
	n         int
	pid       int
	started   time.Time
	logOffset int64         // where its log begins in the node's file
	exited    chan struct{} // closed once cmd.Wait returned
	state     *os.ProcessState

	mu struct {
		sync.Mutex
		expectExit bool // set before the test kills it
		paused     bool
	}
}

// crash is an exit of a run that the test did not cause.
type crash struct {
	at   time.Time
	run  int
	how  string // the wait status
	tail string // the interesting lines of its log
}

// ports returns the TCP ports the node listens on.
func (nd *node) ports() []string {
	var out []string
	for _, a := range nd.addrs {
		if i := strings.LastIndexByte(a, ':'); i >= 0 {
			out = append(out, a[i+1:])
		}
	}
	return out
}

func (nd *node) current() *run {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.mu.run
}

// alive reports whether the current run has not exited.
func (nd *node) alive() bool {
	r := nd.current()
	if r == nil {
		return false
	}
	select {
	case <-r.exited:
		return false
	default:
		return true
	}
}

// start runs a new process of the node. It does not wait for it to be
// ready (waitReady does).
func (nd *node) start(bin string) error {
	f, err := os.OpenFile(nd.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	off, err := f.Seek(0, 2)
	if err != nil {
		return err
	}
	nd.mu.Lock()
	nd.mu.runs++
	n := nd.mu.runs
	nd.mu.Unlock()
	fmt.Fprintf(f, "=== chaos: %s run %d started at %s\n", nd.name, n, time.Now().Format(time.RFC3339Nano))

	cmd := exec.Command(bin, append([]string{nd.role}, nd.args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = nd.dataDir
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group, so signals reach it and nothing else;
		// killed with the test process if that dies without cleanup.
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
		Credential: &syscall.Credential{Uid: uint32(nd.uid), Gid: uint32(nd.uid), NoSetGroups: true},
	}
	if err := nd.spawn.start(cmd); err != nil {
		return fmt.Errorf("starting %s: %w", nd.name, err)
	}
	r := &run{n: n, pid: cmd.Process.Pid, started: time.Now(), logOffset: off, exited: make(chan struct{})}
	nd.mu.Lock()
	nd.mu.run = r
	nd.mu.Unlock()
	nd.spawn.wg.Add(1)
	go func() { // owned by the spawner's WaitGroup, which cluster cleanup waits for
		defer nd.spawn.wg.Done()
		_ = cmd.Wait()
		r.state = cmd.ProcessState
		r.mu.Lock()
		expected := r.mu.expectExit
		r.mu.Unlock()
		if !expected {
			c := crash{at: time.Now(), run: r.n, how: cmd.ProcessState.String(), tail: nd.interestingLog(r.logOffset, 30)}
			nd.mu.Lock()
			nd.mu.crashes = append(nd.mu.crashes, c)
			nd.mu.Unlock()
		}
		close(r.exited)
	}()
	return nil
}

// signal sends sig to the run's process group.
func (r *run) signal(sig syscall.Signal) {
	_ = syscall.Kill(-r.pid, sig)
}

// kill9 kills the current run with SIGKILL and waits until it is gone.
func (nd *node) kill9() {
	r := nd.current()
	if r == nil {
		return
	}
	r.mu.Lock()
	r.mu.expectExit = true
	r.mu.Unlock()
	r.signal(syscall.SIGKILL)
	<-r.exited
}

// pause stops the current run with SIGSTOP; resume continues it.
func (nd *node) pause() {
	if r := nd.current(); r != nil {
		r.mu.Lock()
		r.mu.paused = true
		r.mu.Unlock()
		r.signal(syscall.SIGSTOP)
	}
}

func (nd *node) resume() {
	if r := nd.current(); r != nil {
		r.signal(syscall.SIGCONT)
		r.mu.Lock()
		r.mu.paused = false
		r.mu.Unlock()
	}
}

func (nd *node) paused() bool {
	r := nd.current()
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.paused
}

// takeCrashes returns the unexpected exits recorded since the last call.
func (nd *node) takeCrashes() []crash {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	c := nd.mu.crashes
	nd.mu.crashes = nil
	return c
}

// readyLine is what a role logs once it serves.
func (nd *node) readyLine() string { return `msg="magnetar ` + nd.role + ` ready"` }

// waitReady polls until the current run has logged that it is ready and
// its /readyz answers 200, it exits, or ctx ends.
func (nd *node) waitReady(ctx context.Context) error {
	r := nd.current()
	if r == nil {
		return fmt.Errorf("%s was never started", nd.name)
	}
	return poll(ctx, 50*time.Millisecond, func() (bool, error) {
		select {
		case <-r.exited:
			return false, fmt.Errorf("%s (run %d) exited before it was ready: %v", nd.name, r.n, r.state)
		default:
		}
		if !bytes.Contains(nd.logSince(r.logOffset), []byte(nd.readyLine())) {
			return false, nil
		}
		return nd.httpOK(ctx, "/readyz"), nil
	})
}

var httpClient = &http.Client{Timeout: 700 * time.Millisecond}

// httpOK reports whether GET path on the node's admin port answers 200.
func (nd *node) httpOK(ctx context.Context, path string) bool {
	_, ok := nd.httpGet(ctx, path)
	return ok
}

func (nd *node) httpGet(ctx context.Context, path string) (string, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+nd.addrs["http"]+path, nil)
	if err != nil {
		return "", false
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return b.String(), resp.StatusCode == http.StatusOK
}

// metric returns the value of the sample whose name and labels are
// exactly series (e.g. `magnetar_bookie_is_leader{shard="s1"}`), and
// whether the node answered with it.
func (nd *node) metric(ctx context.Context, series string) (string, bool) {
	body, ok := nd.httpGet(ctx, "/metrics")
	if !ok {
		return "", false
	}
	for line := range strings.SplitSeq(body, "\n") {
		if v, found := strings.CutPrefix(line, series+" "); found {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

func (nd *node) logSince(off int64) []byte {
	data, err := os.ReadFile(nd.logPath)
	if err != nil || int64(len(data)) < off {
		return nil
	}
	return data[off:]
}

// interesting are the log lines worth showing in a report.
var interesting = regexp.MustCompile(`level=(ERROR|WARN)|panic|fatal|FATAL|goroutine \d+ \[|=== chaos`)

// interestingLog returns the last max interesting lines logged since off.
func (nd *node) interestingLog(off int64, max int) string {
	var keep []string
	for line := range strings.SplitSeq(string(nd.logSince(off)), "\n") {
		if interesting.MatchString(line) {
			keep = append(keep, line)
		}
	}
	if len(keep) > max {
		keep = keep[len(keep)-max:]
	}
	return strings.Join(keep, "\n")
}

// spawner starts processes from one OS thread that lives until the
// cluster is torn down: Pdeathsig fires when the thread that forked a
// child exits, and Go may retire other threads at any time.
type spawner struct {
	reqs chan spawnReq
	done chan struct{}
	wg   sync.WaitGroup // the goroutines waiting for children
}

type spawnReq struct {
	cmd *exec.Cmd
	err chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq), done: make(chan struct{})}
	go func() { // owned by the spawner: stop waits for it
		defer close(s.done)
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		for r := range s.reqs {
			r.err <- r.cmd.Start()
		}
	}()
	return s
}

func (s *spawner) start(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	s.reqs <- spawnReq{cmd: cmd, err: errc}
	return <-errc
}

// stop ends the spawner's thread once every child has been waited for
// (the caller killed them).
func (s *spawner) stop() {
	s.wg.Wait()
	close(s.reqs)
	<-s.done
}

// poll calls cond every interval until it returns true or an error, or
// ctx ends.
func poll(ctx context.Context, interval time.Duration, cond func() (bool, error)) error {
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

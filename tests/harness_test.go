package tests

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds the binaries built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	if os.Getenv(leaseHolderEnv) != "" { // re-executed as a lease holder (meta_lease_test.go)
		os.Exit(leaseHolderMain())
	}
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "magnetar-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	for _, cmd := range []string{"magnetar", "magctl"} {
		build := exec.Command("go", "build", "-o", filepath.Join(dir, cmd), "./cmd/"+cmd)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", cmd, err, out)
			return 1
		}
	}
	return m.Run()
}

// process is a running magnetar child process whose stderr is copied to a
// log file. It is killed when the test ends, and its log shown if the test
// failed.
type process struct {
	t       testing.TB
	label   string // for log output, e.g. "standalone /tmp/x" or "meta m1"
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed once the process has exited and its log is written
}

// startProcess runs `magnetar args...` and calls onLine (from another
// goroutine) with each line it logs.
func startProcess(t testing.TB, label string, args []string, onLine func(string)) *process {
	t.Helper()
	logFile, err := os.CreateTemp(t.TempDir(), "magnetar-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, "magnetar"), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, label: label, cmd: cmd, logPath: logFile.Name(), exited: make(chan struct{})}
	var copied sync.WaitGroup
	copied.Add(1)
	go func() {
		defer copied.Done()
		defer logFile.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintln(logFile, sc.Text())
			onLine(sc.Text())
		}
		_, _ = io.Copy(logFile, stderr)
	}()
	go func() {
		copied.Wait() // Wait closes the pipe: read it all first
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			p.dumpLog()
		}
	})
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *process) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// pause stops the process (SIGSTOP: its connections stay open, nothing
// answers) and returns resume (SIGCONT). The test resumes it when it ends
// in any case, so a failure leaves no process stopped; resume may be
// called more than once.
func (p *process) pause() (resume func()) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		p.t.Fatalf("pausing %s: %v", p.label, err)
	}
	var once sync.Once
	resume = func() {
		once.Do(func() {
			if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil && !errors.Is(err, os.ErrProcessDone) {
				p.t.Errorf("resuming %s: %v", p.label, err)
			}
		})
	}
	p.t.Cleanup(resume)
	return resume
}

// logContains reports whether the process's log holds s.
func (p *process) logContains(s string) bool {
	data, err := os.ReadFile(p.logPath)
	return err == nil && strings.Contains(string(data), s)
}

func (p *process) dumpLog() {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 200 {
		lines = lines[len(lines)-200:]
	}
	p.t.Logf("magnetar %s log (last %d lines):\n%s", p.label, len(lines), strings.Join(lines, "\n"))
}

// server is a `magnetar standalone` process.
type server struct {
	*process
	dataDir    string
	nativeAddr string
	httpAddr   string
}

var readyLine = regexp.MustCompile(`msg="magnetar (?:standalone|broker) ready" native=(\S+) http=(\S+)`)

// startServer starts a standalone on dataDir with ports chosen by the
// kernel, and waits until it says it is ready and /readyz answers 200.
func startServer(t testing.TB, dataDir string, extraArgs ...string) *server {
	t.Helper()
	s := startServing(t, "standalone "+dataDir, []string{"standalone", "--data-dir", dataDir}, extraArgs)
	s.dataDir = dataDir
	return s
}

// startBroker starts a `magnetar broker` over the metadata service at
// metaAddrs, like startServer.
func startBroker(t testing.TB, metaAddrs string, extraArgs ...string) *server {
	t.Helper()
	return startServing(t, "broker", []string{"broker", "--meta-addrs", metaAddrs}, extraArgs)
}

// startServing runs a standalone or broker with args, on ports chosen by
// the kernel unless extraArgs (which come last, so they win) say
// otherwise, and waits until it is ready.
func startServing(t testing.TB, label string, args, extraArgs []string) *server {
	t.Helper()
	args = append(args, "--native-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	args = append(args, extraArgs...)
	if !slices.Contains(args, "--kafka.listen-addr") { // else every server would want :9092
		args = append(args, "--kafka.listen-addr", "127.0.0.1:0")
	}
	addrs := make(chan []string, 1)
	p := startProcess(t, label, args, func(line string) {
		if m := readyLine.FindStringSubmatch(line); m != nil {
			select {
			case addrs <- m[1:]:
			default:
			}
		}
	})
	s := &server{process: p}
	select {
	case a := <-addrs:
		s.nativeAddr, s.httpAddr = a[0], a[1]
	case <-s.exited:
		s.dumpLog()
		t.Fatalf("magnetar %s exited before it was ready: %v", label, s.cmd.ProcessState)
	case <-time.After(30 * time.Second):
		s.dumpLog()
		t.Fatalf("magnetar %s did not become ready within 30s", label)
	}
	waitFor(t, 10*time.Second, "readyz", func() bool {
		resp, err := http.Get(s.adminURL() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return s
}

func (s *server) adminURL() string { return "http://" + s.httpAddr }

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.t.Fatal("magnetar did not exit within 30s of SIGTERM")
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		s.t.Fatalf("magnetar exited with code %d after SIGTERM", code)
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testContext(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func skipIfShort(t testing.TB) {
	if testing.Short() {
		t.Skip("integration test: starts real processes (run without -short)")
	}
}

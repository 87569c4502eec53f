package kafka

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A real EMFILE: in a subprocess (the limit is the process's), connections
// wait in a listener's backlog while RLIMIT_NOFILE is lowered to 0, so the
// server's accept fails with EMFILE. The accept loop backs off and, once
// descriptors are available again, accepts and answers them, and the
// server goes on serving franz-go.
func TestAcceptSurvivesARealEMFILE(t *testing.T) {
	if os.Getenv("KAFKA_TEST_EMFILE_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestAcceptSurvivesARealEMFILE$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "KAFKA_TEST_EMFILE_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestAcceptSurvivesARealEMFILE") {
			t.Fatalf("the subprocess failed: %v\n%s", err, out)
		}
		return
	}
	ts := newTestServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	waiting := &testServer{s: ts.s, addr: ln.Addr().String()}
	var conns []*rawConn
	for range 3 {
		conns = append(conns, waiting.dial(t)) // in the backlog: not served yet
	}

	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 0, Max: lim.Max}); err != nil {
		t.Fatal(err)
	}
	served := serveAlso(t, ts, ln)
	waitFor(t, "accept to fail with EMFILE twice", func() bool { return ts.s.stats.acceptErrors.Load() >= 2 })
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}

	for _, c := range conns {
		if r := c.roundTrip(apiVersions()).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
			t.Fatalf("ApiVersions after EMFILE: error %d", r.ErrorCode)
		}
	}
	stillServes(t, waiting)
	if err := ts.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after EMFILE: %v", err)
	}
}

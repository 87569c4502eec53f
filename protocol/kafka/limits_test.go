package kafka

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// Each attack of a hostile, unauthenticated client over a real socket: the
// server closes the connection cleanly (or holds it without reading), and
// then still serves franz-go.

// stillServes checks that the server serves franz-go: it creates a topic
// and produces to it.
func stillServes(t *testing.T, ts *testServer, opts ...kgo.Opt) {
	t.Helper()
	ctx := ctxT(t)
	topic := "after-" + strings.NewReplacer("/", "-", "#", "-").Replace(t.Name())
	cl := newClient(t, ts, opts...)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatalf("creating a topic after the attack: %v", err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("producing after the attack: %v", err)
	}
}

// expectEOF checks that the server closed the connection, rather than
// leaving it open without an answer.
func expectEOF(t *testing.T, c *rawConn) {
	t.Helper()
	_, _, err := c.readFrame()
	switch {
	case err == nil:
		t.Fatal("the connection answered; want it closed")
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatal("the connection is still open")
	}
}

// writeFrame writes a size prefix and body (which may be shorter than the
// size, for a frame still arriving).
func writeFrame(t *testing.T, c *rawConn, size int, body []byte) {
	t.Helper()
	if _, err := c.nc.Write(append(binary.BigEndian.AppendUint32(nil, uint32(size)), body...)); err != nil {
		t.Fatal(err)
	}
}

func apiVersions() *kmsg.ApiVersionsRequest {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version, req.ClientSoftwareName, req.ClientSoftwareVersion = 3, "test", "1"
	return req
}

func openConns(ts *testServer) int {
	ts.s.mu.Lock()
	defer ts.s.mu.Unlock()
	return ts.s.mu.open
}

// An ApiVersions v3 request claiming 2^32-1 tagged fields closes the
// connection at once; kmsg alone spent over a minute of CPU on it.
func TestHugeTagCountClosesTheConnection(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.dial(t)
	frame := []byte{0, 18, 0, 3, 0, 0, 0, 1, 0xff, 0xff, 0} // ApiVersions v3, correlation ID 1, null client ID, no header tags
	frame = append(frame, 1, 1)                             // empty software name and version
	frame = binary.AppendUvarint(frame, 1<<32-1)
	writeFrame(t, c, len(frame), frame)
	expectEOF(t, c)
	stillServes(t, ts)
}

// failingListener fails its first Accept calls with err.
type failingListener struct {
	net.Listener
	failures atomic.Int32
	err      error
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.failures.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: l.err}
	}
	return l.Listener.Accept()
}

// serveAlso serves ln on ts's server too and returns where Serve's
// result arrives.
func serveAlso(t *testing.T, ts *testServer, ln net.Listener) <-chan error {
	served := make(chan error, 1)
	go func() { served <- ts.s.Serve(ln) }()
	return served
}

// Running out of file descriptors (EMFILE) makes the accept loop back off
// and try again, not stop serving (it took the whole process down).
func TestAcceptBacksOffFromEMFILEAndKeepsServing(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &failingListener{Listener: inner, err: os.NewSyscallError("accept4", syscall.EMFILE)}
	ln.failures.Store(5)
	served := serveAlso(t, ts, ln)
	stillServes(t, &testServer{s: ts.s, addr: inner.Addr().String()})
	if got := ts.s.stats.acceptErrors.Load(); got != 5 {
		t.Fatalf("%d accept errors counted, want 5", got)
	}
	if err := ts.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after EMFILE: %v", err)
	}
}

// Any other accept error still stops the listener, with the error.
func TestAcceptStopsOnAPermanentError(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	broken := errors.New("listener broken")
	ln := &failingListener{Listener: inner, err: broken}
	ln.failures.Store(1)
	if err := <-serveAlso(t, ts, ln); !errors.Is(err, broken) {
		t.Fatalf("Serve: %v, want the listener's error", err)
	}
}

func TestAcceptBackoffDoublesFrom5msTo1s(t *testing.T) {
	var got []time.Duration
	var d time.Duration
	for range 10 {
		d = nextAcceptDelay(d)
		got = append(got, d)
	}
	ms := time.Millisecond
	want := []time.Duration{5 * ms, 10 * ms, 20 * ms, 40 * ms, 80 * ms, 160 * ms, 320 * ms, 640 * ms, time.Second, time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
	if !temporaryAcceptError(&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.ENFILE)}) {
		t.Fatal("ENFILE is not temporary")
	}
}

// A connection over max-connections or max-connections-per-ip is closed
// at once and counted; once connections end, new ones are served.
func TestConnectionCaps(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		global, perIP int
	}{
		{"over max-connections-per-ip", 100, 4},
		{"over max-connections", 4, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, func(c *Config) { c.MaxConnections, c.MaxConnectionsPerIP = tc.global, tc.perIP })
			var held []*rawConn
			for range 4 {
				c := ts.dial(t)
				c.roundTrip(apiVersions())
				held = append(held, c)
			}
			expectEOF(t, ts.dial(t))
			if got := ts.s.stats.refusedConns.Load(); got != 1 {
				t.Fatalf("%d connections refused, want 1", got)
			}
			held[0].roundTrip(apiVersions()) // the admitted ones are unaffected
			for _, c := range held {
				c.nc.Close()
			}
			waitFor(t, "the held connections to end", func() bool { return openConns(ts) == 0 })
			stillServes(t, ts)
		})
	}
}

// A connection that sends no request for connections-max-idle is closed.
func TestIdleConnectionsAreClosed(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.ConnectionsMaxIdle = 300 * time.Millisecond })
	c := ts.dial(t)
	c.roundTrip(apiVersions())
	expectEOF(t, c)
	waitFor(t, "the idle connection to be counted", func() bool { return ts.s.stats.idleClosed.Load() >= 1 })
	stillServes(t, ts)
}

// A client that takes no response for connections-max-idle (here, thirty
// pipelined 1 MiB fetches, none read) has its connection closed too.
func TestConnectionsNotReadingTheirResponsesAreClosed(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.ConnectionsMaxIdle = 300 * time.Millisecond })
	c := ts.dial(t)
	createTopic(t, c, "unread", 1)
	if code, _ := produceCode(t, c, produceRequest(t, "unread", 0, -1, bigBatch(t, make([]byte, 1_000_000)))); code != 0 {
		t.Fatalf("produce: error %d", code)
	}
	for range 30 {
		c.send(fetchRequest("unread", 0, 0))
	}
	waitFor(t, "the server to close the connection", func() bool { return openConns(ts) == 0 })
	stillServes(t, ts)
}

// A frame that does not arrive whole within request-read-timeout of its
// size (slowloris) closes the connection.
func TestSlowFramesAreClosed(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.RequestReadTimeout = 200 * time.Millisecond })
	c := ts.dial(t)
	writeFrame(t, c, 100, []byte{0, 18, 0, 3}) // 4 bytes of 100, then nothing
	expectEOF(t, c)
	if got := ts.s.stats.readTimeouts.Load(); got != 1 {
		t.Fatalf("%d read timeouts counted, want 1", got)
	}
	stillServes(t, ts)
}

// With SASL enabled, a frame over sasl-max-receive-size before login
// closes the connection without being read or reserved; after login the
// usual limit applies.
func TestLargeFramesBeforeLoginAreRefusedUnread(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) {
		c.SASLMechanisms, c.SASLUsers = "PLAIN", "alice:s3cret"
	})
	c := ts.dial(t)
	writeFrame(t, c, 99<<20, nil) // claims 99 MiB, under max-request-bytes
	expectEOF(t, c)
	if got := ts.s.stats.framesBeforeAuth.Load(); got != 1 {
		t.Fatalf("%d frames refused before login, want 1", got)
	}
	if peak := ts.s.budget.peak.Load(); peak != 0 {
		t.Fatalf("%d bytes were reserved for the refused frame", peak)
	}
	login := kgo.SASL(plain.Auth{User: "alice", Pass: "s3cret"}.AsMechanism())
	stillServes(t, ts, login)
	cl := newClient(t, ts, login)
	big := &kgo.Record{Topic: "after-" + t.Name(), Value: make([]byte, 600<<10)}
	if err := cl.ProduceSync(ctxT(t), big).FirstErr(); err != nil {
		t.Fatalf("a 600 KiB record after login: %v", err)
	}
}

// Ten connections claiming the largest frames cannot make the server hold
// more than queued-max-request-bytes of them: two reserve the whole budget
// and the other eight wait, without reading, as does a normal request
// behind them, which is answered once the attackers go away.
func TestRequestBudgetBoundsFramesInFlight(t *testing.T) {
	t.Parallel()
	const frame, budget = 2 << 20, 4 << 20
	ts := newTestServer(t, func(c *Config) { c.MaxRequestBytes, c.QueuedMaxRequestBytes = frame, budget })
	var attackers []*rawConn
	for range 10 {
		c := ts.dial(t)
		writeFrame(t, c, frame, []byte{0}) // one byte of it, then nothing
		attackers = append(attackers, c)
	}
	b := ts.s.budget
	waitFor(t, "two frames to reserve the budget and eight to wait", func() bool {
		return b.reserved.Load() == budget && b.waits.Load() == 8
	})
	c := ts.dial(t)
	corr := c.send(apiVersions())
	waitFor(t, "the normal request to wait too", func() bool { return b.waits.Load() == 9 })
	for _, a := range attackers {
		a.nc.Close()
	}
	if resp := c.read(apiVersions(), corr).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions after the attack: error %d", resp.ErrorCode)
	}
	if peak := b.peak.Load(); peak > budget {
		t.Fatalf("%d bytes reserved at the peak, over the budget of %d", peak, budget)
	}
	waitFor(t, "every reservation to be released", func() bool { return b.reserved.Load() == 0 })
	stillServes(t, ts)
}

// A failed login is answered after its source's delay, on that
// connection only: a client from another source logs in meanwhile, and
// Close does not wait for the delay.
func TestFailedLoginDelayHoldsOnlyItsSource(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) {
		c.SASLMechanisms, c.SASLUsers = "PLAIN", "alice:s3cret"
		c.SASLFailureDelay, c.SASLFailureMaxDelay = time.Hour, time.Hour
	})
	c := ts.dial(t)
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "PLAIN"
	c.roundTrip(hs)
	auth := kmsg.NewPtrSASLAuthenticateRequest()
	auth.Version, auth.SASLAuthBytes = 2, []byte("\x00alice\x00wrong")
	corr := c.send(auth)
	waitFor(t, "the failure to be counted", func() bool { return ts.s.stats.authFailures.Load() == 1 })

	// From 127.0.0.2, another source, while 127.0.0.1 waits an hour.
	other := kgo.Dialer((&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext)
	stillServes(t, ts, other, kgo.SASL(plain.Auth{User: "alice", Pass: "s3cret"}.AsMechanism()))

	if err := ts.s.Close(); err != nil {
		t.Fatal(err)
	}
	ar := c.read(auth, corr).(*kmsg.SASLAuthenticateResponse)
	if ar.ErrorCode != kerr.SaslAuthenticationFailed.Code {
		t.Fatalf("the held failure: %+v", ar)
	}
	expectEOF(t, c)
}

// Failed logins over the wire are counted and grow their source's delay;
// an error never quotes more than a little of a huge client message.
func TestFailedLoginsGrowTheSourcesDelay(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) {
		c.SASLMechanisms, c.SASLUsers = "PLAIN,SCRAM-SHA-256", "alice:s3cret"
		c.SASLFailureDelay, c.SASLFailureMaxDelay = time.Millisecond, 4*time.Millisecond
	})
	login := func(mech string, msg []byte) *kmsg.SASLAuthenticateResponse {
		c := ts.dial(t)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 1, mech
		c.roundTrip(hs)
		auth := kmsg.NewPtrSASLAuthenticateRequest()
		auth.Version, auth.SASLAuthBytes = 2, msg
		ar := c.roundTrip(auth).(*kmsg.SASLAuthenticateResponse)
		expectEOF(t, c)
		return ar
	}
	for range 3 {
		if ar := login("PLAIN", []byte("\x00alice\x00wrong")); ar.ErrorCode != kerr.SaslAuthenticationFailed.Code {
			t.Fatalf("wrong password: %+v", ar)
		}
	}
	huge := login("SCRAM-SHA-256", []byte(strings.Repeat("x", 60<<10)+",,n=alice,r=1"))
	if huge.ErrorCode != kerr.SaslAuthenticationFailed.Code || huge.ErrorMessage == nil || len(*huge.ErrorMessage) > 2*maxQuoted {
		t.Fatalf("a huge SCRAM message: code %d, message of %d bytes", huge.ErrorCode, len(*huge.ErrorMessage))
	}
	if got := ts.s.stats.authFailures.Load(); got != 4 {
		t.Fatalf("%d failures counted, want 4", got)
	}
	ts.s.backoff.mu.Lock()
	src := ts.s.backoff.mu.sources["127.0.0.1"]
	failures, delay := src.failures, ts.s.backoff.delayLocked(src)
	ts.s.backoff.mu.Unlock()
	if failures != 4 || delay != 4*time.Millisecond {
		t.Fatalf("127.0.0.1: %d failures, delay %v; want 4 and the 4ms maximum", failures, delay)
	}
	stillServes(t, ts, kgo.SASL(plain.Auth{User: "alice", Pass: "s3cret"}.AsMechanism()))
}

// The backoff, on a synthetic clock: delays double per failure up to the
// maximum, later logins from the source take successive slots, a login
// whose slot is over the maximum away is refused, other sources are not
// held, and a source quiet for failureMemory starts afresh.
func TestAuthBackoffSlots(t *testing.T) {
	b := newAuthBackoff(100*time.Millisecond, 400*time.Millisecond)
	t0 := time.Unix(1000, 0)
	if at, ok := b.slot("a", t0); !ok || !at.Equal(t0) {
		t.Fatalf("a source without failures waits: %v %v", at, ok)
	}
	ms := time.Millisecond
	for i, want := range []time.Duration{100 * ms, 200 * ms, 400 * ms, 400 * ms} {
		if d := b.failed("a", t0); d != want {
			t.Fatalf("failure %d: delay %v, want %v", i+1, d, want)
		}
	}
	// The next slot is at +400ms; the one after, at +800ms, is over the
	// 400ms maximum away: refused, until time moves on.
	if at, ok := b.slot("a", t0); !ok || at.Sub(t0) != 400*ms {
		t.Fatalf("first login: slot at +%v (%v), want +400ms", at.Sub(t0), ok)
	}
	if _, ok := b.slot("a", t0); ok {
		t.Fatal("a login 800ms away (over the 400ms maximum) was not refused")
	}
	if at, ok := b.slot("a", t0.Add(400*ms)); !ok || at.Sub(t0) != 800*ms {
		t.Fatalf("a login at +400ms: slot at +%v (%v), want +800ms", at.Sub(t0), ok)
	}
	if at, ok := b.slot("b", t0); !ok || !at.Equal(t0) {
		t.Fatal("another source is held by a's failures")
	}
	later := t0.Add(failureMemory + 2*time.Second)
	if at, ok := b.slot("a", later); !ok || !at.Equal(later) {
		t.Fatal("a source quiet for failureMemory still waits")
	}
	if d := b.failed("a", later); d != 100*ms {
		t.Fatalf("the first failure after a quiet spell: delay %v, want 100ms", d)
	}
	for i := range maxBackoffSources + 10 {
		b.failed(string(rune(i+1000)), later)
	}
	if n := len(b.mu.sources); n > maxBackoffSources {
		t.Fatalf("%d sources remembered, the bound is %d", n, maxBackoffSources)
	}
}

// A client ID longer than max-client-id-bytes is truncated where the
// server keeps it: the member ID made from it.
func TestLongClientIDsAreTruncated(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.dial(t)
	long := strings.Repeat("c", 5000)
	req := joinReq("g", "", nil, "meta")
	c.corr++
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID(long)).AppendRequest(nil, req, c.corr)
	if _, err := c.nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	resp := c.read(req, c.corr).(*kmsg.JoinGroupResponse)
	if resp.ErrorCode != kerr.MemberIDRequired.Code || !strings.HasPrefix(resp.MemberID, long[:256]+"-") {
		t.Fatalf("member ID %.300q (error %d), want the client ID cut to 256 bytes", resp.MemberID, resp.ErrorCode)
	}
}

func TestLimitConfigErrors(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"no connections":              func(c *Config) { c.MaxConnections = 0 },
		"no connections per IP":       func(c *Config) { c.MaxConnectionsPerIP = 0 },
		"no idle time":                func(c *Config) { c.ConnectionsMaxIdle = 0 },
		"no read time":                func(c *Config) { c.RequestReadTimeout = 0 },
		"no frame before login":       func(c *Config) { c.SASLMaxReceiveSize = 0 },
		"a budget below a request":    func(c *Config) { c.QueuedMaxRequestBytes = c.MaxRequestBytes - 1 },
		"a max delay below the delay": func(c *Config) { c.SASLFailureMaxDelay = c.SASLFailureDelay / 2 },
		"a negative failure delay":    func(c *Config) { c.SASLFailureDelay = -1 },
		"no client ID bytes":          func(c *Config) { c.MaxClientIDBytes = 0 },
	} {
		cfg := DefaultConfig()
		mutate(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

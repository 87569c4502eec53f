package tests

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/client"
)

// TestConnectionsOverTheCapsAreClosedAndTheServerGoesOnServing holds a
// standalone's native and admin listeners at their per-address caps with
// idle connections, as a client that opens connections without end would:
// the next connection is closed at once, before the server reads a byte,
// and clients within the caps are served as before.
func TestConnectionsOverTheCapsAreClosedAndTheServerGoesOnServing(t *testing.T) {
	skipIfShort(t)
	srv := startServer(t, t.TempDir(), "--native.max-connections-per-ip", "4", "--http.max-connections-per-ip", "4")
	ctx := testContext(t, time.Minute)

	c, err := client.New(client.Options{Address: srv.nativeAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := c.CreateProducer(ctx, client.ProducerOptions{Topic: "caps"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, &client.Message{Value: []byte("before")}); err != nil {
		t.Fatal(err)
	}

	for _, addr := range []string{srv.nativeAddr, srv.httpAddr} {
		// The client holds one native connection; three more reach the
		// native cap (and four the admin one, which nothing else holds).
		held := 3
		if addr == srv.httpAddr {
			held = 4
		}
		for range held {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
		}
		waitFor(t, 10*time.Second, "a connection over the cap of "+addr+" to be closed", func() bool {
			over, err := net.Dial("tcp", addr)
			if err != nil {
				return false
			}
			defer over.Close()
			_ = over.SetReadDeadline(time.Now().Add(time.Second))
			_, err = over.Read(make([]byte, 1))
			return err == io.EOF
		})
	}

	if _, err := p.Send(ctx, &client.Message{Value: []byte("after")}); err != nil {
		t.Fatalf("a send within the caps: %v", err)
	}
	resp, err := http.Get(srv.adminURL() + "/healthz")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("an admin request over the cap was served (HTTP %d)", resp.StatusCode)
	}
}

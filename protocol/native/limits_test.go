package native

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/protocol/native/nativepb"
)

// A message over max-message-bytes is refused (RESOURCE_EXHAUSTED for its
// batch, or for the stream when it is over gRPC's frame limit too) and
// nothing of it is stored: a consumer reads exactly what was accepted,
// before and after it.
func TestOversizedMessagesAreRefusedAndNothingOfThemIsStored(t *testing.T) {
	c := newService(t, func(cfg *broker.Config) { cfg.MaxMessageBytes = 64 << 10 })
	p := openProducer(t, c, "limits", 0)
	if _, err := p.Recv(); err != nil {
		t.Fatal(err)
	}
	send(t, p, 1, "before")
	send(t, p, 2, strings.Repeat("x", 1<<20)) // over max-message-bytes
	send(t, p, 3, "after")
	if r, err := p.Recv(); err != nil || r.GetReceipt().GetBaseOffset() != 0 {
		t.Fatalf("first answer: %v, %v; want a receipt at offset 0", r, err)
	}
	if r, err := p.Recv(); err != nil || codes.Code(r.GetError().GetCode()) != codes.ResourceExhausted {
		t.Fatalf("second answer: %v, %v; want RESOURCE_EXHAUSTED", r, err)
	}
	if r, err := p.Recv(); err != nil || r.GetReceipt().GetBaseOffset() != 1 {
		t.Fatalf("third answer: %v, %v; want a receipt at offset 1", r, err)
	}
	// Over gRPC's frame limit (4 MiB here, max-message-bytes + 1 MiB in
	// magnetar): the stream itself is refused.
	send(t, p, 4, strings.Repeat("y", 8<<20))
	if _, err := p.Recv(); err == nil {
		t.Fatal("a message over the frame limit was answered")
	} else {
		wantCode(t, err, codes.ResourceExhausted)
	}

	s, err := c.Consume(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	sub := &nativepb.Subscribe{Topic: "limits", Subscription: "reader", InitialPosition: nativepb.InitialPosition_EARLIEST}
	if err := s.Send(&nativepb.ConsumeRequest{Kind: &nativepb.ConsumeRequest_Subscribe{Subscribe: sub}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&nativepb.ConsumeRequest{Kind: &nativepb.ConsumeRequest_Flow{Flow: &nativepb.Flow{Permits: 10}}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		r, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range r.GetMessages().GetMessages() {
			got = append(got, string(m.GetMessage().GetValue()))
		}
	}
	if len(got) != 2 || got[0] != "before" || got[1] != "after" {
		t.Fatalf("consumed %d messages, want before and after only", len(got))
	}
}

package client

import (
	"testing"
	"time"
)

// A message is never delivered before its DeliverAt: the time goes on the
// wire in whole milliseconds, rounded up, never down (truncating let a
// delayed message arrive up to a millisecond early).
func TestDeliverAtGoesOnTheWireRoundedUp(t *testing.T) {
	base := time.UnixMilli(1_700_000_000_123)
	for _, tc := range []struct {
		at   time.Time
		want int64
	}{
		{base, 1_700_000_000_123},
		{base.Add(time.Nanosecond), 1_700_000_000_124},
		{base.Add(999_999 * time.Nanosecond), 1_700_000_000_124},
		{base.Add(time.Millisecond), 1_700_000_000_124},
	} {
		got := toProto(&Message{DeliverAt: tc.at}).GetDeliverAtMs()
		if got != tc.want {
			t.Errorf("DeliverAt %v went on the wire as %d ms, want %d", tc.at, got, tc.want)
		}
		if back := fromProto(toProto(&Message{DeliverAt: tc.at})).DeliverAt; back.Before(tc.at) {
			t.Errorf("DeliverAt %v came back as %v, earlier", tc.at, back)
		}
	}
}

package broker

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/metadata/catalog"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

func TestCheckName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"orders-processor", true},
		{"Group_1.v2", true},
		{"spark-kafka-source-9f0c2e1a-driver-0", true},
		{"my sub (eu:west)", true},
		{"группа-订阅-🚀", true},
		{strings.Repeat("a", 255), true},
		{"", false},
		{strings.Repeat("a", 256), false},
		{"nul\x00byte", false},
		{"new\nline", false},
		{"tab\there", false},
		{"del\x7f", false},
		{"zero\u200bwidth", false},
		{"no-break\u00a0space", false},
		{"bad\xffutf8", false},
		{"a/b", true},
		{"app/orders/v2", true},
		{"a//b", false},
		{"/a", false},
		{"a/", false},
		{"../../etc", false},
		{".", false},
		{"..", false},
		{"...", true},
	} {
		err := checkName(SubscriptionName, tc.name, 255)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok %v", QuoteName(tc.name), err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidName) {
			t.Errorf("%s: %v does not wrap ErrInvalidName", QuoteName(tc.name), err)
		}
	}
}

func TestInvalidNameErrorsQuoteAtMost64BytesOfTheName(t *testing.T) {
	t.Parallel()
	for _, name := range []string{
		strings.Repeat("x", 5<<20),
		strings.Repeat("é", 1000) + "/",
		strings.Repeat("\x00", 5<<20),
	} {
		err := checkName(SubscriptionName, name, 255)
		if err == nil {
			t.Fatal("accepted")
		}
		// 64 bytes, escaped at most 4 times over, and the words around.
		if n := len(err.Error()); n > 64*4+150 {
			t.Fatalf("the error for a %d-byte name is %d bytes: %.200s", len(name), n, err)
		}
	}
	if got := QuoteName(strings.Repeat("é", 40)); !strings.HasPrefix(got, `"`+strings.Repeat("é", 32)+`"...`) {
		t.Fatalf("QuoteName cut inside a character: %s", got)
	}
}

func TestMaxNameBytesIsConfigurable(t *testing.T) {
	t.Parallel()
	b := newBroker(t, newStores(t), func(c *Config) { c.MaxNameBytes = 8 })
	n := topic(t, b, "short-names", 1)
	if _, err := b.CreateSubscription(ctxT(t), n, 0, "12345678", Earliest, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateSubscription(ctxT(t), n, 0, "123456789", Earliest, nil); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("a 9-byte name under a limit of 8: %v, want ErrInvalidName", err)
	}
	for _, bad := range []int{0, MaxNameBytesLimit + 1} {
		c := DefaultConfig()
		c.MaxNameBytes = bad
		if c.Validate() == nil {
			t.Errorf("max-name-bytes %d validated", bad)
		}
	}
}

// Issue 15: subscriptions named with 5 MiB of bytes, NUL bytes or "../"
// were stored, grew the metadata and could not be deleted. Every entry
// point that would create such a name now refuses it, and stores nothing.
func TestBadNamesAreRefusedWhereverANameComesIn(t *testing.T) {
	t.Parallel()
	b := newBroker(t, newStores(t))
	n := topic(t, b, "names", 1)
	huge := strings.Repeat("s", 5<<20)
	for _, bad := range []string{huge, "nul\x00", "../x", "a//b", "line\n"} {
		q := QuoteName(bad)
		_, err := b.Subscribe(ctxT(t), SubscribeOptions{Topic: n, Subscription: bad})
		wantInvalid(t, "Subscribe "+q, err)
		_, err = b.Subscribe(ctxT(t), SubscribeOptions{Topic: n, Subscription: "ok", ConsumerName: bad, NonDurable: true})
		wantInvalid(t, "Subscribe with consumer name "+q, err)
		_, err = b.CreateSubscription(ctxT(t), n, 0, bad, Earliest, nil)
		wantInvalid(t, "CreateSubscription "+q, err)
		wantInvalid(t, "CommitOffset "+q, b.CommitOffset(ctxT(t), n, 0, bad, Committed{Offset: 0}))
		wantInvalid(t, "AddGroupTopics "+q, b.AddGroupTopics(ctxT(t), bad, "consumer", []TopicName{n}))
		_, err = b.ResetSubscription(ctxT(t), n, 0, bad, Position{Offset: 0})
		wantInvalid(t, "ResetSubscription "+q, err)
	}
	st, err := b.TopicStats(ctxT(t), n)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Subscriptions) != 0 {
		t.Fatalf("subscriptions stored: %d", len(st.Subscriptions))
	}
	if gs, err := b.Groups(ctxT(t)); err != nil || len(gs) != 0 {
		t.Fatalf("groups stored: %d, %v", len(gs), err)
	}
}

func wantInvalid(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalidName) {
		t.Fatalf("%s: %v, want ErrInvalidName", what, err)
	}
	if len(err.Error()) > 512 {
		t.Fatalf("%s: the error is %d bytes long", what, len(err.Error()))
	}
}

// Names stored before the rule existed are listed, read and deleted like
// any other: the rule applies to new names, and must not strand old ones.
func TestNamesStoredBeforeTheRuleCanStillBeListedReadAndDeleted(t *testing.T) {
	t.Parallel()
	b := newBroker(t, newStores(t))
	n := topic(t, b, "old-names", 1)
	old := []string{strings.Repeat("s", 1<<20), "nul\x00", "../x", "line\n"}
	for i, name := range old {
		cn := catalog.CursorName{Partition: partitionName(n, 0), Subscription: name}
		if _, err := b.cat.Cursors.Set(ctxT(t), cn, &catalogpb.Cursor{NextOffset: int64(i)}); err != nil {
			t.Fatal(err)
		}
		g := &catalogpb.Group{ProtocolType: "consumer", Topics: []string{n.String()}, CreatedUnixMs: time.Now().UnixMilli()}
		if _, err := b.cat.Groups.Create(ctxT(t), name, g); err != nil {
			t.Fatal(err)
		}
	}
	st, err := b.TopicStats(ctxT(t), n)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Subscriptions) != len(old) {
		t.Fatalf("listed %d subscriptions, want %d", len(st.Subscriptions), len(old))
	}
	for i, name := range old {
		c, ok, err := b.CommittedOffset(ctxT(t), n, 0, name)
		if err != nil || !ok || c.Offset != int64(i) {
			t.Fatalf("CommittedOffset %s: %v %v %v", QuoteName(name), c, ok, err)
		}
		if _, err := b.SkipMessages(ctxT(t), n, 0, name, 0); err != nil {
			t.Fatalf("SkipMessages %s: %v", QuoteName(name), err)
		}
		if err := b.DeleteSubscription(ctxT(t), n, 0, name); err != nil {
			t.Fatalf("DeleteSubscription %s: %v", QuoteName(name), err)
		}
		if err := b.DeleteGroup(ctxT(t), name); err != nil {
			t.Fatalf("DeleteGroup %s: %v", QuoteName(name), err)
		}
	}
	if st, err = b.TopicStats(ctxT(t), n); err != nil || len(st.Subscriptions) != 0 {
		t.Fatalf("after deleting: %d subscriptions, %v", len(st.Subscriptions), err)
	}
	if gs, err := b.Groups(ctxT(t)); err != nil || len(gs) != 0 {
		t.Fatalf("after deleting: %d groups, %v", len(gs), err)
	}
}

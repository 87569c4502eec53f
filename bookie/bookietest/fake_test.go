package bookietest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/bookie/bookietest"
)

func TestFakeConformance(t *testing.T) {
	bookietest.RunConformance(t, func(t *testing.T) bookie.Client { return bookietest.NewFake() })
}

func TestFakeFailsAfterClose(t *testing.T) {
	f := bookietest.NewFake()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.CreateSegment(context.Background(), 1, 0, 1); !errors.Is(err, bookie.ErrClosed) {
		t.Fatalf("CreateSegment after Close: %v, want ErrClosed", err)
	}
}

package catalog_test

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/magnetar-mq/magnetar/metadata/catalog"
	"github.com/magnetar-mq/magnetar/metadata/metadatatest"
)

func TestEveryCallerGetsTheSameClusterSecret(t *testing.T) {
	cat := catalog.New(metadatatest.NewStore())
	ctx := context.Background()
	got := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			s, err := cat.Secret(ctx, "producer-ids")
			if err != nil {
				t.Error(err)
			}
			got[i] = s
		})
	}
	wg.Wait()
	for _, s := range got {
		if len(s) != 32 || !bytes.Equal(s, got[0]) {
			t.Fatalf("secrets differ or are not 32 bytes: %x", got)
		}
	}
	other, err := cat.Secret(ctx, "other")
	if err != nil || bytes.Equal(other, got[0]) {
		t.Fatalf("another secret: %x, %v", other, err)
	}
}

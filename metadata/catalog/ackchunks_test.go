package catalog_test

import (
	"context"
	"testing"

	"github.com/magnetar-mq/magnetar/metadata/catalog"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
	"github.com/magnetar-mq/magnetar/metadata/metadatatest"
)

// Subscription names could hold a '/' before names were checked: the rows
// of "a/x" then share the key prefix of "a"'s, and listing "a" (to load
// or delete its acknowledgements) took "a/x"'s too.
func TestAckChunksOfACursorAreItsOwnOnly(t *testing.T) {
	cat := catalog.New(metadatatest.NewStore())
	ctx := context.Background()
	p := catalog.PartitionName{Topic: catalog.TopicName{Tenant: "t", Namespace: "n", Topic: "o"}}
	a := catalog.CursorName{Partition: p, Subscription: "a"}
	ax := catalog.CursorName{Partition: p, Subscription: "a/x"}
	for _, cn := range []catalog.CursorName{a, ax, ax} {
		for chunk := range int64(3) {
			if _, err := cat.AckChunks.Set(ctx, catalog.AckChunkName{Cursor: cn, Chunk: chunk}, &catalogpb.AckChunk{Epoch: 1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got []catalog.AckChunkName
	page := catalog.Page{Limit: 2}
	for {
		l, err := cat.AckChunks.List(ctx, a, page)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range l.Entries {
			got = append(got, e.Name)
		}
		if l.Next == "" {
			break
		}
		page.After = l.Next
	}
	if len(got) != 3 {
		t.Fatalf("listing a gave %v, want its 3 chunks only", got)
	}
	for _, n := range got {
		if n.Cursor != a {
			t.Fatalf("listing a gave %v", n)
		}
	}
}

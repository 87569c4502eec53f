package metadatatest

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/magnetar-mq/magnetar/metadata"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestInMemoryStoreConformance(t *testing.T) {
	const history = 1000
	RunConformance(t, func(t *testing.T) metadata.Store {
		s := NewStore(WithHistoryRevisions(history))
		t.Cleanup(func() { _ = s.Close() })
		return s
	}, HistoryRevisions(history))
}

package metadata_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/magnetar-mq/magnetar/metadata"
)

// BenchmarkTxn measures compare-and-swap Txns through Raft on a real
// directory: each Txn checks one key is missing and creates it plus a
// second key, as one Raft entry and one revision. Values are 100 bytes.
func BenchmarkTxn(b *testing.B) {
	val := make([]byte, 100)
	txn := func(i int64) metadata.TxnRequest {
		k := fmt.Sprintf("bench/%08d", i)
		return metadata.TxnRequest{
			Compares: []metadata.Compare{metadata.KeyMissing(k)},
			Then:     []metadata.Op{metadata.PutOp(k, val), metadata.PutOp(k+"/meta", val)},
		}
	}
	for _, par := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%dxGOMAXPROCS", par), func(b *testing.B) {
			s := openService(b, b.TempDir(), 0)
			ctx := context.Background()
			var n atomic.Int64
			b.SetParallelism(par)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := s.Txn(ctx, txn(n.Add(1)))
					if err != nil || !resp.Succeeded {
						b.Errorf("Txn = %+v, %v", resp, err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "txns/s")
		})
	}
}

package recordtest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"testing"

	"github.com/magnetar-mq/magnetar/internal/record"
)

func TestGzipRecordMakesAValidBatchOfOneRecord(t *testing.T) {
	b := Batch(record.CodecGzip, 1, GzipRecord(t, 3<<20))
	if _, err := record.Validate(b); err != nil {
		t.Fatal(err)
	}
	var got []record.Record
	if err := record.DecodeRecords(b, func(r record.Record) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Key != nil || !bytes.Equal(got[0].Value, make([]byte, 3<<20)) {
		t.Fatalf("decoded %d records, want one of 3 MiB of zeros", len(got))
	}
	if _, err := record.ValidateLimit(b, 3<<20); !errors.Is(err, record.ErrTooLarge) {
		t.Fatalf("3 MiB of value under a 3 MiB limit: %v, want ErrTooLarge", err)
	}
}

func TestGzipBombDecompressesToWhatItSays(t *testing.T) {
	bomb := GzipBomb(t, 128<<20)
	r, err := gzip.NewReader(bytes.NewReader(bomb))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, r)
	if err != nil || n != 128<<20 {
		t.Fatalf("a bomb of %d bytes decompresses to %d bytes, %v; want 128 MiB", len(bomb), n, err)
	}
}

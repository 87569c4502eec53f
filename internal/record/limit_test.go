package record

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// zeros is n zero bytes, the most compressible input there is.
func zeros(n int) []byte { return make([]byte, n) }

// bomb returns n zero bytes compressed with codec as producers could send
// them. The zstd ones carry no frame content size (a streaming writer's),
// or one per frame of a series of frames, so decompression cannot refuse
// them from the header and has to stop while decoding.
func bomb(t testing.TB, codec Codec, n int, zstdFrames bool) []byte {
	t.Helper()
	if codec != CodecZstd {
		c, err := compress(nil, codec, zeros(n))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if zstdFrames {
		frame, err := compress(nil, CodecZstd, zeros(n/16))
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Repeat(frame, 16)
	}
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	for range n / (64 << 10) {
		if _, err := w.Write(zeros(64 << 10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bytesAllocated returns the bytes f allocates per call, once pools and
// lazily built coders are warm. The test calling it must not run in
// parallel with others: the count is the process's.
func bytesAllocated(f func()) uint64 {
	f()
	const runs = 4
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / runs
}

type bombCase struct {
	name  string
	codec Codec
	input []byte
	// allocs bounds the bytes its decompression may allocate, in limits:
	// buffers doubling up to the limit take twice it in all. zstd decodes
	// again into a buffer twice as large each time the output does not
	// fit, and the decoder itself grows the buffer by a quarter for the
	// block that overflows it before it reports the overflow.
	allocs float64
}

func bombCases(t testing.TB, n int) []bombCase {
	return []bombCase{
		{"gzip", CodecGzip, bomb(t, CodecGzip, n, false), 2.5},
		{"snappy (xerial chunks)", CodecSnappy, bomb(t, CodecSnappy, n, false), 2.5},
		{"lz4", CodecLZ4, bomb(t, CodecLZ4, n, false), 2.5},
		{"zstd without a stated size", CodecZstd, bomb(t, CodecZstd, n, false), 5},
		{"zstd in frames under the limit", CodecZstd, bomb(t, CodecZstd, n, true), 2.5},
	}
}

func TestDecompressionStopsAtTheLimitAndAllocatesAboutIt(t *testing.T) {
	const limit = 1 << 20
	for _, tc := range bombCases(t, 16<<20) {
		var err error
		got := bytesAllocated(func() { _, err = decompressLimit(nil, tc.codec, tc.input, limit) })
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%s: 16 MiB of output under a 1 MiB limit: %v, want ErrTooLarge", tc.name, err)
		}
		if float64(got) > tc.allocs*limit {
			t.Errorf("%s: a 16 MiB bomb under a 1 MiB limit allocated %d KiB, more than %.1f times the limit", tc.name, got>>10, tc.allocs)
		}
	}
}

func TestSmallBatchesDoNotAllocateTheLimit(t *testing.T) {
	for _, codec := range []Codec{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		small, err := compress(nil, codec, bytes.Repeat([]byte("magnetar "), 100))
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		got := bytesAllocated(func() { out, err = decompressLimit(nil, codec, small, MaxUncompressedSize) })
		if err != nil || len(out) != 900 {
			t.Fatalf("%s: %d bytes, %v", codec, len(out), err)
		}
		// A decoder's own buffers (lz4's 64 KiB block, made when the pool
		// has none yet) are fine; a buffer sized on the limit is not.
		if got > 1<<20 {
			t.Errorf("%s: decompressing 900 bytes under a 128 MiB limit allocated %d KiB", codec, got>>10)
		}
	}
}

func TestDecompressionKeepsEverythingUpToTheLimit(t *testing.T) {
	const limit = 300 << 10
	for _, codec := range []Codec{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		for _, n := range []int{limit - 1, limit, limit + 1} {
			src := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
			c, err := compress(nil, codec, src)
			if err != nil {
				t.Fatal(err)
			}
			out, err := decompressLimit(nil, codec, c, limit)
			switch {
			case n > limit && !errors.Is(err, ErrTooLarge):
				t.Fatalf("%s: %d bytes under a limit of %d: %v, want ErrTooLarge", codec, n, limit, err)
			case n <= limit && (err != nil || !bytes.Equal(out, src)):
				t.Fatalf("%s: %d bytes under a limit of %d: got %d bytes, %v", codec, n, limit, len(out), err)
			}
		}
	}
}

// oneRecordBatch is a batch of one record whose value is n zero bytes.
func oneRecordBatch(t *testing.T, codec Codec, n int) []byte {
	t.Helper()
	b, err := AppendBatch(nil, BatchOptions{Codec: codec}, []Record{{Value: zeros(n)}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestValidateLimitBoundsWhatABatchHoldsNotWhatItWeighs(t *testing.T) {
	const value = 2 << 20
	plain := len(oneRecordBatch(t, CodecNone, value))
	for _, codec := range allCodecs {
		b := oneRecordBatch(t, codec, value)
		if _, err := Validate(b); err != nil {
			t.Fatalf("%s: Validate: %v", codec, err)
		}
		if _, err := ValidateLimit(b, plain); err != nil {
			t.Fatalf("%s: a batch of %d bytes uncompressed under a limit of as many: %v", codec, plain, err)
		}
		if _, err := ValidateLimit(b, plain-1); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%s: a batch of %d bytes uncompressed (%d compressed) under a limit of %d: %v, want ErrTooLarge",
				codec, plain, len(b), plain-1, err)
		}
	}
	if _, err := ValidateLimit(oneRecordBatch(t, CodecGzip, 10), HeaderSize-1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a limit below the header size: %v, want ErrTooLarge", err)
	}
}

// BenchmarkDecompressBomb measures what a bomb of 64 MiB of zeros costs
// under a 1 MiB limit (B/op: the bytes allocated per bomb).
func BenchmarkDecompressBomb(b *testing.B) {
	for _, tc := range bombCases(b, 64<<20) {
		b.Run(tc.name, func(b *testing.B) {
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decompressLimit(buf, tc.codec, tc.input, 1<<20); !errors.Is(err, ErrTooLarge) {
					b.Fatal(fmt.Errorf("got %v, want ErrTooLarge", err))
				}
			}
		})
	}
}

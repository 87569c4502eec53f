package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codec is a batch compression codec: the low three attribute bits.
type Codec int8

// The codecs Kafka defines.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	default:
		return fmt.Sprintf("codec(%d)", int8(c))
	}
}

// Valid reports whether c is a codec this package can read and write.
func (c Codec) Valid() bool { return c >= CodecNone && c <= CodecZstd }

// MaxUncompressedSize bounds the decompressed size of one batch's records,
// so a small malicious batch cannot make a decoder allocate without limit.
const MaxUncompressedSize = 128 << 20

// xerialMagic starts a snappy stream in the xerial framing Kafka's Java
// client writes: the magic, then version and compatible version (int32 1),
// then chunks of int32 big-endian length + raw snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const (
	xerialHeaderSize = 16
	// xerialChunk is the uncompressed chunk size the xerial writer uses by
	// default (and so Kafka).
	xerialChunk = 32 << 10
)

// appendWriter is an io.Writer appending to a slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// compressor holds reusable streaming writers.
type compressor struct {
	out appendWriter
	gz  *gzip.Writer
	lz  *lz4.Writer
}

var compressors = sync.Pool{New: func() any { return new(compressor) }}

// decompressor holds reusable streaming readers.
type decompressor struct {
	in bytes.Reader
	gz *gzip.Reader
	lz *lz4.Reader
}

var decompressors = sync.Pool{New: func() any { return new(decompressor) }}

var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdDec  *zstd.Decoder
	zstdErr  error
)

// zstdCoders returns the shared zstd encoder and decoder; EncodeAll and
// DecodeAll are safe for concurrent use and start no goroutines.
func zstdCoders() (*zstd.Encoder, *zstd.Decoder, error) {
	zstdOnce.Do(func() {
		zstdEnc, zstdErr = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
		if zstdErr != nil {
			return
		}
		zstdDec, zstdErr = zstd.NewReader(nil,
			zstd.WithDecoderMaxMemory(MaxUncompressedSize),
			zstd.WithDecoderMaxWindow(MaxUncompressedSize))
	})
	return zstdEnc, zstdDec, zstdErr
}

// compress appends src compressed with codec to dst.
func compress(dst []byte, codec Codec, src []byte) ([]byte, error) {
	switch codec {
	case CodecNone:
		return append(dst, src...), nil
	case CodecSnappy:
		return appendXerial(dst, src), nil
	case CodecZstd:
		enc, _, err := zstdCoders()
		if err != nil {
			return dst, err
		}
		return enc.EncodeAll(src, dst), nil
	case CodecGzip, CodecLZ4:
	default:
		return dst, fmt.Errorf("%w: %d", ErrCodec, codec)
	}
	c := compressors.Get().(*compressor)
	defer compressors.Put(c)
	c.out.b = dst
	defer func() { c.out.b = nil }()
	var w io.WriteCloser
	if codec == CodecGzip {
		if c.gz == nil {
			gz, err := gzip.NewWriterLevel(&c.out, gzip.DefaultCompression)
			if err != nil {
				return dst, err
			}
			c.gz = gz
		} else {
			c.gz.Reset(&c.out)
		}
		w = c.gz
	} else {
		if c.lz == nil {
			c.lz = lz4.NewWriter(&c.out)
			// Kafka writes independent 64 KiB blocks without a content
			// checksum.
			if err := c.lz.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(false)); err != nil {
				c.lz = nil
				return dst, err
			}
		} else {
			c.lz.Reset(&c.out)
		}
		w = c.lz
	}
	if _, err := w.Write(src); err != nil {
		return dst, err
	}
	if err := w.Close(); err != nil {
		return dst, err
	}
	return c.out.b, nil
}

// appendXerial appends src as xerial-framed snappy.
func appendXerial(dst, src []byte) []byte {
	dst = append(dst, xerialMagic...)
	dst = binary.BigEndian.AppendUint32(dst, 1) // version
	dst = binary.BigEndian.AppendUint32(dst, 1) // minimum compatible version
	for len(src) > 0 {
		n := min(len(src), xerialChunk)
		lenAt := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		need := s2.MaxEncodedLen(n)
		dst = growLen(dst, need)
		block := s2.EncodeSnappy(dst[lenAt+4:lenAt+4+need], src[:n])
		binary.BigEndian.PutUint32(dst[lenAt:], uint32(len(block)))
		dst = dst[:lenAt+4+len(block)]
		src = src[n:]
	}
	return dst
}

// growLen extends b by n bytes of unspecified content.
func growLen(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), 2*cap(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// decompress decompresses src into dst[:0] (reusing its capacity) and
// returns the result, at most MaxUncompressedSize bytes.
func decompress(dst []byte, codec Codec, src []byte) ([]byte, error) {
	return decompressLimit(dst, codec, src, MaxUncompressedSize)
}

// decompressLimit is decompress with a limit at most MaxUncompressedSize.
func decompressLimit(dst []byte, codec Codec, src []byte, limit int) ([]byte, error) {
	dst = dst[:0]
	switch codec {
	case CodecNone:
		return append(dst, src...), nil
	case CodecSnappy:
		return decodeSnappy(dst, src, limit)
	case CodecZstd:
		_, dec, err := zstdCoders()
		if err != nil {
			return dst, err
		}
		out, err := dec.DecodeAll(src, dst)
		if err != nil {
			if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
				return dst, fmt.Errorf("%w: zstd: %v", ErrTooLarge, err)
			}
			return dst, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
		}
		if len(out) > limit {
			return dst, fmt.Errorf("%w: zstd output over %d bytes", ErrTooLarge, limit)
		}
		return out, nil
	case CodecGzip, CodecLZ4:
	default:
		return dst, fmt.Errorf("%w: %d", ErrCodec, codec)
	}
	d := decompressors.Get().(*decompressor)
	defer decompressors.Put(d)
	d.in.Reset(src)
	defer d.in.Reset(nil)
	var r io.Reader
	if codec == CodecGzip {
		var err error
		if d.gz == nil {
			d.gz, err = gzip.NewReader(&d.in)
		} else {
			err = d.gz.Reset(&d.in)
		}
		if err != nil {
			return dst, fmt.Errorf("%w: gzip: %v", ErrCorrupt, err)
		}
		r = d.gz
	} else {
		if d.lz == nil {
			d.lz = lz4.NewReader(&d.in)
		} else {
			d.lz.Reset(&d.in)
		}
		r = d.lz
	}
	if cap(dst) < 4*len(src) {
		// Compressed text usually shrinks 2-5x: start near the final size.
		dst = make([]byte, 0, min(max(4*len(src), 4096), limit+1))
	}
	out, err := readAllLimit(dst, r, limit)
	if errors.Is(err, errLimit) {
		return dst, fmt.Errorf("%w: %s: %v", ErrTooLarge, codec, err)
	}
	if err != nil {
		return dst, fmt.Errorf("%w: %s: %v", ErrCorrupt, codec, err)
	}
	return out, nil
}

var errLimit = errors.New("output over MaxUncompressedSize")

// readAllLimit appends everything r yields to dst, failing past limit.
func readAllLimit(dst []byte, r io.Reader, limit int) ([]byte, error) {
	if cap(dst) < 512 {
		dst = make([]byte, 0, 4096)
	}
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst) > limit {
			return dst, errLimit
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

// decodeSnappy decodes a raw snappy block or an xerial-framed stream.
func decodeSnappy(dst, src []byte, limit int) ([]byte, error) {
	if len(src) < xerialHeaderSize || !bytes.Equal(src[:len(xerialMagic)], xerialMagic) {
		return snappyBlock(dst, src, limit)
	}
	src = src[xerialHeaderSize:]
	for len(src) > 0 {
		if len(src) < 4 {
			return dst, fmt.Errorf("%w: snappy: truncated xerial chunk length", ErrCorrupt)
		}
		n := binary.BigEndian.Uint32(src)
		src = src[4:]
		if uint64(n) > uint64(len(src)) {
			return dst, fmt.Errorf("%w: snappy: xerial chunk of %d bytes, %d left", ErrCorrupt, n, len(src))
		}
		var err error
		if dst, err = snappyBlock(dst, src[:n], limit); err != nil {
			return dst, err
		}
		src = src[n:]
	}
	return dst, nil
}

// snappyBlock appends the decoding of one raw snappy block to dst.
func snappyBlock(dst, src []byte, limit int) ([]byte, error) {
	n, err := s2.DecodedLen(src)
	if err != nil {
		return dst, fmt.Errorf("%w: snappy: %v", ErrCorrupt, err)
	}
	if len(dst)+n > limit {
		return dst, fmt.Errorf("%w: snappy output over %d bytes", ErrTooLarge, limit)
	}
	start := len(dst)
	dst = growLen(dst, n)
	if _, err := s2.Decode(dst[start:], src); err != nil {
		return dst[:start], fmt.Errorf("%w: snappy: %v", ErrCorrupt, err)
	}
	return dst, nil
}

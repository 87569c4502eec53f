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
		// DecodeAll decodes into the capacity of the buffer it is given
		// and no further (decodeZstd sizes it); the window may be as large
		// as a batch, as it is only the output decoded so far.
		zstdDec, zstdErr = zstd.NewReader(nil,
			zstd.WithDecoderMaxMemory(MaxUncompressedSize),
			zstd.WithDecoderMaxWindow(MaxUncompressedSize),
			zstd.WithDecodeAllCapLimit(true))
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

// decompressLimit is decompress with a limit, itself at most
// MaxUncompressedSize: past limit bytes of output it stops with
// ErrTooLarge. It never holds more than limit+1 bytes of output (zstd:
// limit plus one block), and it sizes its first buffer on the input (or
// the size a frame states, at most limit), never on the limit: output
// grows as it is produced, so a small batch costs little and a bomb stops
// at the limit.
func decompressLimit(dst []byte, codec Codec, src []byte, limit int) ([]byte, error) {
	limit = max(min(limit, MaxUncompressedSize), 0)
	dst = dst[:0]
	switch codec {
	case CodecNone:
		if len(src) > limit {
			return dst, fmt.Errorf("%w: %d bytes, over %d", ErrTooLarge, len(src), limit)
		}
		return append(dst, src...), nil
	case CodecSnappy:
		return decodeSnappy(dst, src, limit)
	case CodecZstd:
		return decodeZstd(dst, src, limit)
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
	out, err := readAllLimit(dst[:0:min(cap(dst), limit+1)], r, firstSize(len(src), limit+1), limit)
	if errors.Is(err, errLimit) {
		return dst, fmt.Errorf("%w: %s output over %d bytes", ErrTooLarge, codec, limit)
	}
	if err != nil {
		return dst, fmt.Errorf("%w: %s: %v", ErrCorrupt, codec, err)
	}
	return out, nil
}

// firstSize is the first buffer for the decompression of n bytes: four
// times them (compressed records usually shrink 2-5x), at most limit.
func firstSize(n, limit int) int { return min(max(4*n, 4096), limit) }

var errLimit = errors.New("output over the limit")

// readAllLimit appends everything r yields to dst, failing past limit.
// The buffer starts at first bytes (or dst's capacity) and doubles as it
// fills, never beyond limit+1 bytes: one byte past the limit shows the
// output is over it, without reading further.
func readAllLimit(dst []byte, r io.Reader, first, limit int) ([]byte, error) {
	if cap(dst) < first {
		dst = make([]byte, 0, first)
	}
	for {
		if len(dst) == cap(dst) {
			if len(dst) > limit {
				return dst, errLimit
			}
			nb := make([]byte, len(dst), min(2*cap(dst), limit+1))
			copy(nb, dst)
			dst = nb
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

// zstdBlockSlack is room for one more zstd block (at most 128 KiB) and its
// decoder's overrun: a decode that failed closer than this to the end of
// its buffer may have failed for want of room.
const zstdBlockSlack = 128<<10 + 64

// decodeZstd decodes zstd frames into a buffer that grows with the output.
// The shared decoder decodes into dst's capacity only (it is built with
// WithDecodeAllCapLimit): when the output does not fit, the buffer doubles,
// up to limit, and the frames are decoded again from the start. That
// costs at most twice the decoding of the final size, and never holds more
// than limit bytes plus one block. A decode that fails with room to spare
// failed on bad input, and is not tried again.
func decodeZstd(dst, src []byte, limit int) ([]byte, error) {
	_, dec, err := zstdCoders()
	if err != nil {
		return dst, err
	}
	size := firstSize(len(src), limit)
	var h zstd.Header
	if h.Decode(src) == nil && h.HasFCS {
		// The first frame states its size: refuse it or start there.
		if h.FrameContentSize > uint64(limit) {
			return dst, fmt.Errorf("%w: zstd frame of %d bytes, over %d", ErrTooLarge, h.FrameContentSize, limit)
		}
		size = max(size, int(h.FrameContentSize))
	}
	dst = dst[:0:min(cap(dst), limit)]
	for {
		if cap(dst) < size {
			dst = make([]byte, 0, size)
		}
		out, err := dec.DecodeAll(src, dst)
		if err == nil {
			return out, nil
		}
		full := errors.Is(err, zstd.ErrDecoderSizeExceeded) || cap(dst)-len(out) < zstdBlockSlack
		switch {
		case errors.Is(err, zstd.ErrWindowSizeExceeded):
			return dst, fmt.Errorf("%w: zstd: %v", ErrTooLarge, err)
		case !full:
			return dst, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
		case cap(dst) >= limit:
			return dst, fmt.Errorf("%w: zstd output over %d bytes", ErrTooLarge, limit)
		}
		size = min(2*cap(dst), limit)
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
	if n > limit-len(dst) {
		return dst, fmt.Errorf("%w: snappy output over %d bytes", ErrTooLarge, limit)
	}
	start := len(dst)
	if cap(dst)-start < n {
		// Double, but never past the limit: a stream of many chunks grows
		// to at most limit bytes.
		nb := make([]byte, start, min(max(2*cap(dst), start+n), limit))
		copy(nb, dst)
		dst = nb
	}
	dst = dst[:start+n]
	if _, err := s2.Decode(dst[start:], src); err != nil {
		return dst[:start], fmt.Errorf("%w: snappy: %v", ErrCorrupt, err)
	}
	return dst, nil
}

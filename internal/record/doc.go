// Package record encodes and decodes Kafka RecordBatch v2 (magic 2), the
// format of every entry Magnetar stores.
//
// A batch is a 61-byte header followed by its records:
//
//	offset size field
//	0      8    baseOffset            (outside the CRC: set by the owner at append time)
//	8      4    batchLength           (bytes after this field)
//	12     4    partitionLeaderEpoch  (outside the CRC)
//	16     1    magic = 2
//	17     4    crc                   (CRC-32C of bytes 21..end)
//	21     2    attributes            (bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control)
//	23     4    lastOffsetDelta
//	27     8    baseTimestamp
//	35     8    maxTimestamp
//	43     8    producerId
//	51     2    producerEpoch
//	53     4    baseSequence
//	57     4    records count
//	61     ...  records, compressed as a whole when the codec is not none
//
// Each record is: length varint, attributes int8, timestampDelta varlong,
// offsetDelta varint, key (varint length, -1 = null), value (likewise),
// header count varint, then per header a varint-length key string and a
// varint-length value (-1 = null). Varints are zig-zag encoded as in Kafka.
//
// Because baseOffset and partitionLeaderEpoch precede the checksummed range,
// [SetBaseOffset] and [SetPartitionLeaderEpoch] rewrite them in place without
// recomputing the CRC: a broker assigns offsets to a producer's batch and
// serves the very same bytes to Kafka consumers.
//
// Encoding appends to a caller's slice ([AppendBatch]); compression uses
// pooled buffers and coders. Decoding goes through a [Reader] cursor (zero
// allocations per record once warm; decoded slices alias the input or the
// Reader's decompression buffer) or the convenience [DecodeRecords]. Batches
// are checked before use: [ParseHeader] validates size, magic and length,
// [VerifyCRC] the checksum, and [Validate] everything a broker must check
// on a produced batch ([ValidateLimit] with a bound on its decompressed
// size). Decoding never panics on bad input; it returns one of the
// package's sentinel errors, wrapped with detail.
//
// Decompression is bounded: it stops with ErrTooLarge once the output
// passes a limit (MaxUncompressedSize, or ValidateLimit's), holding at most
// about the limit, and its buffers grow with the output rather than being
// sized on the limit, so a small bomb costs little more than the limit and
// a small batch little more than itself.
//
// Snappy is read both as a raw block (librdkafka, franz-go, sarama) and in
// the xerial framing Kafka's Java client writes; it is written xerial-framed,
// as Kafka does. LZ4 uses the LZ4 frame format with independent 64 KiB
// blocks, as Kafka does.
package record

// Package segment is the object format of a sealed segment offloaded to the
// cold tier: the segment's record batches exactly as the segment store held
// them, a sparse offset index, a sparse timestamp index and a fixed-size
// footer, in that order. docs/tiered-format.md describes it byte by byte.
//
// The data section is the concatenation of the segment's entries, so a
// Kafka fetch served from the cold tier sends the very bytes a producer's
// batches became, without re-encoding. The indexes are sparse: an entry at
// the first batch and then at the first batch boundary past every
// IndexInterval bytes (64 KiB by default), so a 1 GiB segment carries about
// 16 Ki offset entries (256 KiB) and at most as many time entries.
//
// The format is built for range reads. A [Reader] fetches the footer (the
// last [FooterSize] bytes), then both indexes in one read, and afterwards
// only the data ranges it is asked for: [Reader.ReadBatches] reads from the
// indexed batch at or before the wanted offset, so it reads at most about
// one index interval it does not return. Positions are relative to the
// start of the segment's object, so objects can also be packed one after
// another into a larger object and read through a [RangeReader] that adds
// the segment's start.
//
// A [Writer] streams: it writes each appended entry to its io.Writer at
// once, after validating its batch headers and offsets, and keeps only the
// sparse indexes in memory. [Writer.Finish] writes the indexes and footer.
//
// Everything a Reader reads is untrusted: Open checks the footer's CRC, the
// layout against the object's size, the indexes' CRCs and their order, and
// ReadBatches checks every batch header it walks. Bad input is an error
// wrapping [ErrCorrupt] (or [ErrVersion] for a format this package does not
// know), never a panic, and no allocation is sized by a length read from the
// object before that length was checked against the object's size.
// [Reader.VerifyData] checks the CRC-32C of the whole object, as the
// offloader does after an upload.
//
// A Reader is immutable after Open and safe for concurrent use; a Writer is
// not.
package segment

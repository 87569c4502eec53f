package bookie

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzDecodeCommand checks that decoding Raft log entries never panics and
// that whatever decodes re-encodes to the same bytes.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range testCommands(f) {
		f.Add(appendCommand(nil, c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCommand(b)
		if err != nil {
			return
		}
		again := appendCommand(nil, c)
		c2, err := decodeCommand(again)
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("re-encoded command decodes to %+v, %v; want %+v", c2, err, c)
		}
	})
}

// FuzzDecodeMeta checks stored segment metadata decoding.
func FuzzDecodeMeta(f *testing.F) {
	f.Add(appendMeta(nil, SegmentInfo{State: SegmentOpen, Epoch: 1, StartOffset: 5, NextOffset: 9, Bytes: 100}))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := decodeMeta(3, b)
		if err != nil {
			return
		}
		if !bytes.Equal(appendMeta(nil, info), b) {
			t.Fatalf("%+v re-encodes differently", info)
		}
	})
}

// FuzzReadSnapshot checks that snapshot decoding never panics, never
// hands out a key outside the state machine.
func FuzzReadSnapshot(f *testing.F) {
	h := newFSMHarness(f)
	h.apply(
		command{op: opCreate, segment: 1, epoch: 1},
		command{op: opAppend, segment: 1, epoch: 1, entries: [][]byte{testBatch(f, 0, 2)}},
		command{op: opSeal, segment: 2, epoch: 1, start: 4},
	)
	f.Add(h.snapshot())
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = readSnapshot(bytes.NewReader(b), func(k, v []byte) error {
			if !inFSMSpans(k) {
				t.Fatalf("accepted key %q", k)
			}
			return nil
		})
	})
}

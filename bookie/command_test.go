package bookie

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func testCommands(t testing.TB) []command {
	return []command{
		{op: opCreate, segment: 1, start: 100, epoch: 3},
		{op: opAppend, segment: 1<<63 + 5, epoch: 9, entries: [][]byte{testBatch(t, 100, 2), testBatch(t, 102, 1)}},
		{op: opAppend, segment: 2, epoch: 1},
		{op: opSeal, segment: 7, epoch: 4, start: 12},
		{op: opDelete, segment: 8},
	}
}

func TestCommandsRoundTrip(t *testing.T) {
	for _, c := range testCommands(t) {
		t.Run(c.op.String(), func(t *testing.T) {
			b := appendCommand([]byte("prefix"), c)
			got, err := decodeCommand(b[len("prefix"):])
			if err != nil {
				t.Fatal(err)
			}
			// Each entry's position in the encoding is what the state's
			// log references record.
			enc := b[len("prefix"):]
			for i, e := range got.entries {
				if at := got.at[i]; !bytes.Equal(enc[at:at+len(e)], c.entries[i]) {
					t.Fatalf("entry %d is not at %d", i, at)
				}
			}
			got.at = nil
			if !reflect.DeepEqual(got, c) {
				t.Fatalf("decoded %+v, want %+v", got, c)
			}
			if c.op == opAppend && len(b)-len("prefix") > appendCommandSize(c.entries) {
				t.Fatalf("appendCommandSize underestimates: %d > %d", len(b), appendCommandSize(c.entries))
			}
		})
	}
}

func TestMalformedCommandsAreRejected(t *testing.T) {
	for _, c := range testCommands(t) {
		b := appendCommand(nil, c)
		for n := range len(b) {
			if _, err := decodeCommand(b[:n]); !errors.Is(err, errBadCommand) {
				t.Fatalf("%s cut to %d bytes: %v", c.op, n, err)
			}
		}
		if _, err := decodeCommand(append(bytes.Clone(b), 0)); !errors.Is(err, errBadCommand) {
			t.Fatalf("%s with a trailing byte: %v", c.op, err)
		}
	}
	for name, b := range map[string][]byte{
		"version 2":   {2, 1, 0, 0, 0, 0, 0, 0, 0, 1},
		"unknown op":  {1, 9, 0, 0, 0, 0, 0, 0, 0, 1},
		"huge count":  append(appendCommand(nil, command{op: opAppend}), 0xff, 0xff, 0xff, 0xff, 0x0f)[:0],
		"empty input": nil,
	} {
		if _, err := decodeCommand(b); !errors.Is(err, errBadCommand) {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func TestMetaRoundTripAndValidation(t *testing.T) {
	info := SegmentInfo{ID: 4, State: SegmentSealed, Epoch: 2, StartOffset: 10, NextOffset: 20, Bytes: 999}
	got, err := decodeMeta(4, appendMeta(nil, info))
	if err != nil || got != info {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	for name, bad := range map[string]SegmentInfo{
		"unknown state":       {State: 9},
		"next before start":   {State: SegmentOpen, StartOffset: 5, NextOffset: 4},
		"negative byte count": {State: SegmentOpen, Bytes: -1},
	} {
		if _, err := decodeMeta(1, appendMeta(nil, bad)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, err := decodeMeta(1, appendMeta(nil, info)[1:]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short value: %v", err)
	}
}

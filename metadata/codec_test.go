package metadata

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestCommandRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cmd  command
	}{
		{"a create", command{op: opPut, key: "tenants/t1", expected: 0, value: []byte("v")}},
		{"an unconditional put of an empty value", command{op: opPut, key: "k", expected: AnyVersion, value: []byte{}}},
		{"a CAS update with a large version", command{op: opPut, key: "k", expected: 1 << 40, value: bytes.Repeat([]byte{1}, 1000)}},
		{"a conditional delete", command{op: opDelete, key: "a/b/c", expected: 7}},
		{"an unconditional delete", command{op: opDelete, key: "x", expected: AnyVersion}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeCommand(tc.cmd.appendTo(nil))
			if err != nil {
				t.Fatal(err)
			}
			if got.op != tc.cmd.op || got.key != tc.cmd.key || got.expected != tc.cmd.expected || !bytes.Equal(got.value, tc.cmd.value) {
				t.Fatalf("round trip = %+v, want %+v", got, tc.cmd)
			}
		})
	}
}

func TestDecodeCommandRejectsMalformedInput(t *testing.T) {
	t.Parallel()
	put := (&command{op: opPut, key: "k", value: []byte("v")}).appendTo(nil)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"nothing", nil},
		{"an unknown op", append([]byte{9}, put[1:]...)},
		{"a truncated put", put[:len(put)-1]},
		{"trailing bytes", append(bytes.Clone(put), 0)},
		{"an empty key", (&command{op: opDelete, key: "", expected: 1}).appendTo(nil)},
		{"a key length past the end", []byte{byte(opPut), 0x7f, 'k'}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeCommand(tc.b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeCommand(%x) err = %v, want ErrCorrupt", tc.b, err)
			}
		})
	}
}

func TestStoredRecordsRoundTrip(t *testing.T) {
	t.Parallel()
	kv := KV{Key: "a/b", Value: []byte("value"), Version: 3, CreateRevision: 10, ModRevision: 42}
	got, err := decodeKVRecord(kv.Key, appendKVRecord(nil, &kv))
	if err != nil || !reflect.DeepEqual(got, kv) {
		t.Fatalf("KV record round trip = %+v, %v; want %+v", got, err, kv)
	}
	evs := []Event{
		{Type: EventPut, KV: KV{Key: "a", Value: []byte{}, Version: 1, CreateRevision: 42, ModRevision: 42}},
		{Type: EventDelete, KV: KV{Key: "b", ModRevision: 42}},
	}
	gotEvs, err := decodeEvents(nil, 42, appendEvents(nil, evs))
	if err != nil || !reflect.DeepEqual(gotEvs, evs) {
		t.Fatalf("history round trip = %+v, %v; want %+v", gotEvs, err, evs)
	}
}

// FuzzDecodeCommand: commands come from the Raft log on disk and from peers.
// No input may panic; whatever decodes must re-encode to the same command.
func FuzzDecodeCommand(f *testing.F) {
	f.Add((&command{op: opPut, key: "tenants/t1", expected: 0, value: []byte("v")}).appendTo(nil))
	f.Add((&command{op: opDelete, key: "k", expected: AnyVersion}).appendTo(nil))
	f.Add([]byte{byte(opPut), 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCommand(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := decodeCommand(c.appendTo(nil))
		if err != nil || again.op != c.op || again.key != c.key || again.expected != c.expected || !bytes.Equal(again.value, c.value) {
			t.Fatalf("re-encoded %+v decodes as %+v, %v", c, again, err)
		}
	})
}

// FuzzDecodeStoredRecords: KV records and history entries are read from
// Pebble and from snapshots. No input may panic.
func FuzzDecodeStoredRecords(f *testing.F) {
	f.Add(appendKVRecord(nil, &KV{Value: []byte("v"), Version: 1, CreateRevision: 2, ModRevision: 3}))
	f.Add(appendEvents(nil, []Event{{Type: EventPut, KV: KV{Key: "a", Value: []byte("v"), Version: 1, CreateRevision: 5}}, {Type: EventDelete, KV: KV{Key: "b"}}}))
	f.Add([]byte{recordFormat, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		if kv, err := decodeKVRecord("k", b); err == nil {
			if again, err := decodeKVRecord("k", appendKVRecord(nil, &kv)); err != nil || !reflect.DeepEqual(again, kv) {
				t.Fatalf("KV record %+v does not round-trip: %+v, %v", kv, again, err)
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
		if evs, err := decodeEvents(nil, 9, b); err == nil {
			if again, err := decodeEvents(nil, 9, appendEvents(nil, evs)); err != nil || !reflect.DeepEqual(again, evs) {
				t.Fatalf("events %+v do not round-trip: %+v, %v", evs, again, err)
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
	})
}

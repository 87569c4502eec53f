package metadata

import (
	"errors"
	"reflect"
	"testing"
)

func TestStoredRecordsRoundTrip(t *testing.T) {
	t.Parallel()
	kv := KV{Key: "a/b", Value: []byte("value"), Version: 3, CreateRevision: 10, ModRevision: 42, Lease: 7}
	got, err := decodeKVRecord(kv.Key, appendKVRecord(nil, &kv))
	if err != nil || !reflect.DeepEqual(got, kv) {
		t.Fatalf("KV record round trip = %+v, %v; want %+v", got, err, kv)
	}
	evs := []Event{
		{Type: EventPut, KV: KV{Key: "a", Value: []byte{}, Version: 1, CreateRevision: 42, ModRevision: 42, Lease: 1 << 40}},
		{Type: EventDelete, KV: KV{Key: "b", ModRevision: 42}},
	}
	gotEvs, err := decodeEvents(nil, 42, appendEvents(nil, evs))
	if err != nil || !reflect.DeepEqual(gotEvs, evs) {
		t.Fatalf("history round trip = %+v, %v; want %+v", gotEvs, err, evs)
	}
}

func TestFormat1RecordsWithoutALeaseAreStillRead(t *testing.T) {
	t.Parallel()
	// format 1 | version 1 | create 2 | mod 3 | value "v"
	kv, err := decodeKVRecord("k", []byte{recordFormatV1, 2, 4, 6, 1, 'v'})
	want := KV{Key: "k", Value: []byte("v"), Version: 1, CreateRevision: 2, ModRevision: 3}
	if err != nil || !reflect.DeepEqual(kv, want) {
		t.Fatalf("format-1 KV record = %+v, %v; want %+v", kv, err, want)
	}
	// format 1 | one event: put | key "a" | value "v" | version 1 | create 2
	evs, err := decodeEvents(nil, 2, []byte{recordFormatV1, 1, byte(EventPut), 1, 'a', 1, 'v', 2, 4})
	wantEv := []Event{{Type: EventPut, KV: KV{Key: "a", Value: []byte("v"), Version: 1, CreateRevision: 2, ModRevision: 2}}}
	if err != nil || !reflect.DeepEqual(evs, wantEv) {
		t.Fatalf("format-1 history entry = %+v, %v; want %+v", evs, err, wantEv)
	}
}

// FuzzDecodeStoredRecords: KV records and history entries are read from
// Pebble and from snapshots. No input may panic.
func FuzzDecodeStoredRecords(f *testing.F) {
	f.Add(appendKVRecord(nil, &KV{Value: []byte("v"), Version: 1, CreateRevision: 2, ModRevision: 3}))
	f.Add(appendEvents(nil, []Event{{Type: EventPut, KV: KV{Key: "a", Value: []byte("v"), Version: 1, CreateRevision: 5}}, {Type: EventDelete, KV: KV{Key: "b"}}}))
	f.Add(appendKVRecord(nil, &KV{Value: []byte("v"), Version: 1, CreateRevision: 2, ModRevision: 3, Lease: 77}))
	f.Add(appendEvents(nil, []Event{{Type: EventPut, KV: KV{Key: "a", Value: []byte("v"), Version: 1, CreateRevision: 5, Lease: 9}}}))
	f.Add([]byte{recordFormatV1, 2, 4, 6, 1, 'v'}) // a format-1 KV record
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

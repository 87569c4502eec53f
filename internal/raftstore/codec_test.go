package raftstore

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestLogRecordRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		log  raft.Log
	}{
		{"an empty command", raft.Log{Index: 1, Term: 1, Type: raft.LogCommand}},
		{"a command with data and extensions", raft.Log{Index: 9, Term: 4, Type: raft.LogCommand, Data: []byte("data"), Extensions: []byte{0, 1, 2}}},
		{"a configuration entry with an append time", raft.Log{Index: 1 << 40, Term: 1 << 33, Type: raft.LogConfiguration, Data: bytes.Repeat([]byte{7}, 300), AppendedAt: time.Unix(1234567890, 987654321)}},
		{"a time before 1970", raft.Log{Index: 2, Term: 1, Type: raft.LogNoop, AppendedAt: time.Unix(-5, 1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got raft.Log
			if err := decodeLog(tc.log.Index, appendLog(nil, &tc.log), &got); err != nil {
				t.Fatal(err)
			}
			if !logsEqual(&got, &tc.log) {
				t.Fatalf("round trip = %+v, want %+v", got, tc.log)
			}
		})
	}
}

func TestDecodeLogRejectsMalformedRecords(t *testing.T) {
	t.Parallel()
	good := appendLog(nil, &raft.Log{Index: 1, Term: 2, Data: []byte("abc"), Extensions: []byte("e")})
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty input", nil},
		{"an unknown version", append([]byte{9}, good[1:]...)},
		{"a truncated record", good[:len(good)-1]},
		{"trailing bytes", append(bytes.Clone(good), 0)},
		{"a data length past the end", []byte{recordVersion, 0, 1, 0, 0xff, 0x01}},
		{"an overlong varint", append([]byte{recordVersion, 0}, bytes.Repeat([]byte{0xff}, 11)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l raft.Log
			if err := decodeLog(1, tc.b, &l); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeLog(%x) err = %v, want ErrCorrupt", tc.b, err)
			}
		})
	}
}

func TestDecodedLogDoesNotAliasTheInput(t *testing.T) {
	t.Parallel()
	b := appendLog(nil, &raft.Log{Index: 1, Term: 1, Data: []byte("abc")})
	var l raft.Log
	if err := decodeLog(1, b, &l); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	if string(l.Data) != "abc" {
		t.Fatalf("Data changed with the input buffer: %q", l.Data)
	}
}

// FuzzDecodeLog checks that arbitrary stored bytes never panic the decoder
// and that whatever decodes re-encodes to a record that decodes the same.
func FuzzDecodeLog(f *testing.F) {
	for _, l := range []raft.Log{
		{Term: 1, Type: raft.LogCommand, Data: []byte("hello")},
		{Term: 7, Type: raft.LogConfiguration, Data: []byte{1, 2, 3}, Extensions: []byte("x"), AppendedAt: time.Unix(1700000000, 5)},
		{Term: 1 << 50, Type: raft.LogNoop},
	} {
		f.Add(appendLog(nil, &l))
	}
	f.Add([]byte{})
	f.Add([]byte{recordVersion, 0, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		var l raft.Log
		if err := decodeLog(3, b, &l); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		var again raft.Log
		if err := decodeLog(3, appendLog(nil, &l), &again); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !logsEqual(&l, &again) {
			t.Fatalf("re-encoding changed the log: %+v != %+v", l, again)
		}
	})
}

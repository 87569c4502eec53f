package metadata

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

var txnSeed = TxnRequest{
	Compares: []Compare{
		CompareVersion("a", CmpEqual, 3),
		CompareValue("b", CmpGreater, []byte("x")),
		KeyMissing("c"),
	},
	Then: []Op{PutOp("a", []byte("1")).WithLease(1 << 40), DeleteOp("b"), PutOp("c", []byte{})},
	Else: []Op{DeleteOp("a")},
}

func commandSeeds() []command {
	return []command{
		{op: opPut, key: "tenants/t1", expected: 0, value: []byte("v")},
		{op: opPut, key: "k", expected: AnyVersion, value: []byte{}},
		{op: opPut, key: "k", expected: 1 << 40, value: bytes.Repeat([]byte{1}, 1000)},
		{op: opDelete, key: "a/b/c", expected: 7},
		{op: opDelete, key: "x", expected: AnyVersion},
		{op: opTxn, txn: txnSeed},
		{op: opTxn},
		{op: opGrant, ttlMs: 10_000},
		{op: opRevoke, lease: 12345},
	}
}

func TestCommandRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range commandSeeds() {
		got, err := decodeCommand(c.appendTo(nil))
		if err != nil {
			t.Fatalf("decode of %+v: %v", c, err)
		}
		if !sameCommand(got, c) {
			t.Fatalf("round trip = %+v, want %+v", got, c)
		}
	}
}

// sameCommand compares commands, taking nil and empty slices as equal.
func sameCommand(a, b command) bool {
	norm := func(c command) command {
		if len(c.value) == 0 {
			c.value = nil
		}
		c.txn = normTxn(c.txn)
		return c
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func normTxn(t TxnRequest) TxnRequest {
	var out TxnRequest
	for _, c := range t.Compares {
		if len(c.Value) == 0 {
			c.Value = nil
		}
		out.Compares = append(out.Compares, c)
	}
	for _, o := range t.Then {
		if len(o.Value) == 0 {
			o.Value = nil
		}
		out.Then = append(out.Then, o)
	}
	for _, o := range t.Else {
		if len(o.Value) == 0 {
			o.Value = nil
		}
		out.Else = append(out.Else, o)
	}
	return out
}

func TestDecodeCommandRejectsMalformedInput(t *testing.T) {
	t.Parallel()
	put := (&command{op: opPut, key: "k", value: []byte("v")}).appendTo(nil)
	txn := (&command{op: opTxn, txn: txnSeed}).appendTo(nil)
	dup := (&command{op: opTxn, txn: TxnRequest{Then: []Op{PutOp("a", nil), DeleteOp("a")}}}).appendTo(nil)
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
		{"a truncated txn", txn[:len(txn)-1]},
		{"a txn with trailing bytes", append(bytes.Clone(txn), 0)},
		{"a txn with two ops on one key", dup},
		{"a txn compare with an unknown target", []byte{byte(opTxn), 1, 9, 1, 1, 'k', 0, 0, 0}},
		{"a txn op with an unknown type", []byte{byte(opTxn), 0, 1, 9, 1, 'k', 0}},
		{"a compare count past the end", []byte{byte(opTxn), 0x7f}},
		{"a grant of ttl 0", []byte{byte(opGrant), 0}},
		{"a grant of a negative ttl", []byte{byte(opGrant), 1}},
		{"a revoke of lease 0", []byte{byte(opRevoke), 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeCommand(tc.b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeCommand(%x) err = %v, want ErrCorrupt", tc.b, err)
			}
		})
	}
}

// FuzzDecodeCommand: commands come from the Raft log on disk and from peers.
// No input may panic; whatever decodes must re-encode to the same command.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range commandSeeds() {
		f.Add(c.appendTo(nil))
	}
	f.Add([]byte{byte(opPut), 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{byte(opTxn), 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCommand(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := decodeCommand(c.appendTo(nil))
		if err != nil || !sameCommand(again, c) {
			t.Fatalf("re-encoded %+v decodes as %+v, %v", c, again, err)
		}
	})
}

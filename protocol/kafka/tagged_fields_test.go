package kafka

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Every served flexible version of every request, encoded by kmsg with
// every field set (arrays of two, strings, unknown tags at every level,
// and Fetch's known tags), is walked by the tagged-field guard to exactly
// its end: the schemas read what kmsg writes.
func TestTaggedFieldSchemasMatchKmsg(t *testing.T) {
	for _, v := range supported {
		for version := v.min; version <= v.max; version++ {
			req := kmsg.RequestForKey(v.key)
			fillValue(reflect.ValueOf(req).Elem(), 0)
			req.SetVersion(version)
			if !req.IsFlexible() {
				continue
			}
			b := req.AppendTo(nil)
			w, err := walkFlexible(v.key, version, b)
			if err != nil {
				t.Errorf("%s v%d: %v", kmsg.NameForKey(v.key), version, err)
				continue
			}
			if len(w.b) != 0 || w.trailing != 0 {
				t.Errorf("%s v%d: the walk left %d bytes of %d unread (%d inside known tags)", kmsg.NameForKey(v.key), version, len(w.b), len(b), w.trailing)
			}
		}
	}
}

// fillValue sets every exported field of v to a non-zero value, slices to
// two elements, and an unknown tag in every kmsg.Tags.
func fillValue(v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(3 + depth))
	case reflect.Float64:
		v.SetFloat(1.5)
	case reflect.String:
		v.SetString("value")
	case reflect.Array: // a UUID
		for i := range v.Len() {
			v.Index(i).SetUint(uint64(i + 1))
		}
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fillValue(p.Elem(), depth)
		v.Set(p)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte("bytes"))
			return
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fillValue(s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Struct:
		if tags, ok := v.Addr().Interface().(*kmsg.Tags); ok {
			tags.Set(99, []byte("unknown tag"))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillValue(v.Field(i), depth+1)
			}
		}
	}
}

// The requests kmsg would spin on are refused at once, whether the huge
// count is in the header, at the end of a body, inside an array element,
// or inside a known tag's value.
func TestHugeTagCountsAreRefusedBeforeKmsg(t *testing.T) {
	huge := binary.AppendUvarint(nil, 1<<32-1)
	header := func(key, version int16) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(key))
		b = binary.BigEndian.AppendUint16(b, uint16(version))
		b = binary.BigEndian.AppendUint32(b, 1)
		return binary.BigEndian.AppendUint16(b, 0xffff) // null client ID
	}
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"in the request header", cat(header(int16(kmsg.ApiVersions), 3), huge)},
		{"at the end of an ApiVersions body", cat(header(int16(kmsg.ApiVersions), 3), []byte{0, 1, 1}, huge)},
		{"in an array element of a DeleteGroups body", cat(header(int16(kmsg.DeleteGroups), 2), []byte{0, 2, 2, 'g'}, huge)},
		{"in a Fetch ReplicaState tag", cat(header(int16(kmsg.Fetch), 12), []byte{0},
			make([]byte, 4+4+4+4+1+4+4),                       // ReplicaID .. SessionEpoch
			[]byte{1, 1, 1},                                   // no topics, no forgotten topics, empty rack
			[]byte{1, 1, 4 + 8 + 5}, make([]byte, 12), huge)}, // one tag: 1, ReplicaState
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseRequest(tc.frame)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("parseRequest: %v, want ErrMalformed", err)
			}
		})
	}
}

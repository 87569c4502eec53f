package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Sentinel errors of decoding requests. Each closes the connection.
var (
	// ErrMalformed means a frame is not a well-formed Kafka request.
	ErrMalformed = errors.New("kafka: malformed request")
	// ErrUnsupported means a request's API key or version is not served.
	ErrUnsupported = errors.New("kafka: unsupported request")
)

// header is a request header (v1, or v2 with tagged fields for flexible
// versions).
type header struct {
	key      int16
	version  int16
	corrID   int32
	clientID string
}

// request is one decoded request frame.
type request struct {
	header
	// req is the decoded body; nil for an ApiVersions request of a version
	// we do not know, which is answered in the v0 format (KIP-511).
	req kmsg.Request
}

// reader is a cursor over a frame: it records the first error and returns
// zero values after it.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated %s", ErrMalformed, what)
	}
	r.b = nil
}

func (r *reader) int16(what string) int16 {
	if len(r.b) < 2 {
		r.fail(what)
		return 0
	}
	v := int16(binary.BigEndian.Uint16(r.b))
	r.b = r.b[2:]
	return v
}

func (r *reader) int32(what string) int32 {
	if len(r.b) < 4 {
		r.fail(what)
		return 0
	}
	v := int32(binary.BigEndian.Uint32(r.b))
	r.b = r.b[4:]
	return v
}

func (r *reader) uvarint(what string) uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) skip(n uint64, what string) {
	if uint64(len(r.b)) < n {
		r.fail(what)
		return
	}
	r.b = r.b[n:]
}

// nullableString reads an int16-length string; -1 is null (returned as "").
func (r *reader) nullableString(what string) string {
	n := r.int16(what)
	if n < 0 || r.err != nil {
		return ""
	}
	if len(r.b) < int(n) {
		r.fail(what)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// skipTags skips a tagged-fields section; no request-header tags are
// defined that we need. A count larger than the bytes left could hold
// (each tag is at least two bytes) is refused at once.
func (r *reader) skipTags() {
	n := r.uvarint("tag count")
	if r.err == nil && n > uint64(len(r.b))/2 {
		r.err = fmt.Errorf("%w: %d tagged fields claimed with %d bytes left", ErrMalformed, n, len(r.b))
		return
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		r.uvarint("tag")
		r.skip(r.uvarint("tag size"), "tag value")
	}
}

// parseRequest decodes one request frame (without its size prefix). An
// error wraps ErrMalformed or ErrUnsupported; it never panics on any
// input. The decoded body may alias frame.
func parseRequest(frame []byte) (request, error) {
	r := reader{b: frame}
	var q request
	q.key = r.int16("api key")
	q.version = r.int16("api version")
	q.corrID = r.int32("correlation id")
	q.clientID = r.nullableString("client id")
	if r.err != nil {
		return q, r.err
	}
	vr, ok := versionsOf(q.key)
	if !ok {
		return q, fmt.Errorf("%w: API key %d (%s)", ErrUnsupported, q.key, kmsg.NameForKey(q.key))
	}
	if q.version < vr.min || q.version > vr.max {
		if q.key == int16(kmsg.ApiVersions) {
			return q, nil // answered with the v0 error response
		}
		return q, fmt.Errorf("%w: %s version %d, served %d-%d", ErrUnsupported, kmsg.NameForKey(q.key), q.version, vr.min, vr.max)
	}
	req := kmsg.RequestForKey(q.key)
	req.SetVersion(q.version)
	if req.IsFlexible() {
		r.skipTags()
		if r.err != nil {
			return q, r.err
		}
		if err := checkTags(q.key, q.version, r.b); err != nil {
			return q, err // before kmsg, which would loop on a huge tag count
		}
	}
	if err := req.ReadFrom(r.b); err != nil {
		return q, fmt.Errorf("%w: %s v%d body: %v", ErrMalformed, kmsg.NameForKey(q.key), q.version, err)
	}
	q.req = req
	return q, nil
}

// appendResponse appends a response frame, size prefix included.
// ApiVersions responses always use header v0 (no tagged fields) so that a
// client that does not know our versions yet can read them.
func appendResponse(dst []byte, corrID int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(corrID))
	if resp.IsFlexible() && resp.Key() != int16(kmsg.ApiVersions) {
		dst = append(dst, 0) // no tagged fields
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

package tiered

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors of an ObjectStore, tested with errors.Is; a store wraps them with
// the key and the cause.
var (
	// ErrNotFound: no object has the key.
	ErrNotFound = errors.New("tiered: object not found")
	// ErrInvalidKey: the key (or a List prefix) breaks the rules of
	// ValidateKey. Nothing was sent to or changed in the store.
	ErrInvalidKey = errors.New("tiered: invalid object key")
	// ErrOutOfRange: GetRange was asked to start before 0 or after the
	// object's end.
	ErrOutOfRange = errors.New("tiered: range outside the object")
)

// Limits of a key, checked by ValidateKey.
const (
	// MaxKeyBytes is the longest key. S3 allows 1024 bytes; an S3Store's
	// Prefix (at most MaxPrefixBytes) and its '/' come on top.
	MaxKeyBytes = 512
	// MaxKeyPartBytes is the longest part between '/'s: a file name in a
	// LocalStore, whose file systems allow 255 bytes.
	MaxKeyPartBytes = 255
)

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	// Key is the object's key, as given to Put.
	Key string
	// Size is the object's length in bytes.
	Size int64
	// ETag is the store's tag of the object's content when it has one
	// (S3), or empty (LocalStore). It is not a checksum of a known
	// algorithm: compare it only with another ETag from the same store.
	ETag string
	// ModTime is when the object was last written, by the store's clock.
	ModTime time.Time
}

// ObjectStore holds objects (immutable byte strings) under keys. It is the
// only way the cold tier touches storage: a LocalStore (a directory) or an
// S3Store (an S3-compatible bucket).
//
// Every method is safe for concurrent use and takes a context, which bounds
// the call (and, for GetRange, the reading of the returned body). A store
// does not retry: a failed call fails once, and the caller (the offloader,
// the reader) decides whether and when to try again.
//
// Keys are '/'-separated paths checked by ValidateKey; a key that breaks
// the rules gives ErrInvalidKey. A key must not also be a "directory" of
// other keys (both "a" and "a/b"): S3 allows it, a LocalStore refuses the
// second Put.
type ObjectStore interface {
	// Put stores exactly size bytes read from r under key, replacing any
	// object the key had. It is atomic: a reader sees the old object or
	// the whole new one, never part of it. If r ends before size bytes
	// (or the call fails, or ctx ends) nothing is stored and the old
	// object, if any, stays. Bytes after the first size are not read.
	Put(ctx context.Context, key string, r io.Reader, size int64) error

	// GetRange returns a reader of at most n bytes of the object from
	// offset off; n < 0 reads to the end. A range past the end is cut
	// short there, and off equal to the size gives an empty reader; off
	// below 0 or above the size gives ErrOutOfRange. The caller closes
	// the reader. An absent object gives ErrNotFound.
	GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)

	// Stat describes the object, or returns ErrNotFound.
	Stat(ctx context.Context, key string) (ObjectInfo, error)

	// Delete removes the object. An absent object is not an error.
	Delete(ctx context.Context, key string) error

	// List calls fn for each object whose key starts with prefix (a plain
	// string prefix: "a/b" matches "a/bc" and "a/b/c"), in increasing
	// byte order of keys. The store pages through the listing itself. If
	// fn returns an error, List stops and returns it. A prefix is "" or
	// a valid key, optionally followed by '/'.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error

	// Close releases the store's resources; the store is not used after.
	Close() error
}

// ValidateKey reports whether key may name an object, wrapping
// ErrInvalidKey if not. A key
//   - is 1 to MaxKeyBytes bytes of UTF-8 without control characters or
//     backslashes;
//   - is parts separated by single '/'s, with no '/' at either end;
//   - has parts of at most MaxKeyPartBytes bytes that do not start with
//     '.' (so no "." or "..", and no name a LocalStore keeps for itself).
//
// These rules make every key a safe relative file path and a portable S3
// object name.
func ValidateKey(key string) error {
	if err := validateKey(key); err != nil {
		return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, err)
	}
	return nil
}

func validateKey(key string) error {
	switch {
	case key == "":
		return errors.New("empty")
	case len(key) > MaxKeyBytes:
		return fmt.Errorf("longer than %d bytes", MaxKeyBytes)
	case !utf8.ValidString(key):
		return errors.New("not UTF-8")
	}
	for _, c := range key {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return fmt.Errorf("holds character %U", c)
		}
	}
	for part := range strings.SplitSeq(key, "/") {
		switch {
		case part == "":
			return errors.New("empty part (a '/' at either end, or '//')")
		case part[0] == '.':
			return fmt.Errorf("part %q starts with '.'", part)
		case len(part) > MaxKeyPartBytes:
			return fmt.Errorf("part longer than %d bytes", MaxKeyPartBytes)
		}
	}
	return nil
}

// validatePrefix checks a List prefix: "" or a valid key, optionally
// followed by '/'.
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := validateKey(strings.TrimSuffix(prefix, "/")); err != nil {
		return fmt.Errorf("%w: list prefix %q: %s", ErrInvalidKey, prefix, err)
	}
	return nil
}

// ctxReader fails reads once ctx is done, so that a long copy stops.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

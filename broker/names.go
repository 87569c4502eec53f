package broker

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Names of subscriptions, consumers, producers and Kafka groups.
//
// Such a name ends a metadata key (a cursor is stored under
// c/<tenant>/<namespace>/<topic>/<partition>/<subscription>), is shown by
// the admin API and magctl, and is written in logs, so one rule applies to
// every one of them. A name is:
//
//   - 1 to Config.MaxNameBytes bytes (default 255, at most
//     MaxNameBytesLimit) of valid UTF-8;
//   - printable characters only (unicode.IsPrint: letters, marks, numbers,
//     punctuation, symbols and the ASCII space): no control characters
//     (NUL, tab, newline, DEL), no other spaces, no invisible format
//     characters;
//   - '/' may separate parts (Kafka group IDs such as "app/orders" are
//     common), but no part is empty, "." or ".." ("../x", "a//b", "/a",
//     "." and ".." are refused). A cursor's acknowledgement rows are its
//     own even when another's name starts with its own and a '/'
//     (catalog.AckChunks.List).
//
// Kafka's rule for topic names ([a-zA-Z0-9._-], up to 249) fits inside it;
// Kafka group IDs and Pulsar subscription names are free strings, of which
// it keeps those that are safe to store, show and type.
//
// The broker checks a name where it comes in to be created or attached
// to: Subscribe (subscription and consumer name), CreateSubscription,
// CommitOffset and AddGroupTopics (a Kafka group), and wherever a
// subscription's cursor would be created. Deleting, listing and reading
// take any name already stored, so names stored before the rule existed
// can still be found and deleted. Protocol adapters check the names they
// keep themselves (a producer's name) with CheckName.

// MaxNameBytesLimit is the largest Config.MaxNameBytes.
const MaxNameBytesLimit = 4096

// maxQuotedName is how many bytes of a name an error message quotes.
const maxQuotedName = 64

// ErrInvalidName refuses a name that breaks the rule above.
var ErrInvalidName = errors.New("broker: invalid name")

// NameKind says what a name names, for error messages.
type NameKind string

// The kinds of names CheckName checks.
const (
	SubscriptionName NameKind = "subscription"
	ConsumerName     NameKind = "consumer name"
	ProducerName     NameKind = "producer name"
	GroupName        NameKind = "group"
)

// CheckName returns an error wrapping ErrInvalidName if name may not name
// a kind (see above); an empty name is invalid too. The message quotes at
// most the first 64 bytes of name.
func (b *Broker) CheckName(kind NameKind, name string) error {
	return checkName(kind, name, b.cfg.MaxNameBytes)
}

func checkName(kind NameKind, name string, maxBytes int) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty %s", ErrInvalidName, kind)
	case len(name) > maxBytes:
		return fmt.Errorf("%w: %s %s is %d bytes, the limit is %d", ErrInvalidName, kind, QuoteName(name), len(name), maxBytes)
	}
	for part := range strings.SplitSeq(name, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("%w: %s %s has an empty, \".\" or \"..\" part between '/'", ErrInvalidName, kind, QuoteName(name))
		}
	}
	for i := 0; i < len(name); {
		r, size := utf8.DecodeRuneInString(name[i:])
		var what string
		switch {
		case r == utf8.RuneError && size == 1:
			what = "is not valid UTF-8"
		case !unicode.IsPrint(r):
			what = fmt.Sprintf("contains the unprintable character %U", r)
		default:
			i += size
			continue
		}
		return fmt.Errorf("%w: %s %s %s at byte %d", ErrInvalidName, kind, QuoteName(name), what, i)
	}
	return nil
}

// QuoteName quotes a name for an error message or a log: whole if it is at
// most 64 bytes, else its first 64 bytes (cut at a character boundary)
// followed by its length, so a message never echoes a huge input.
func QuoteName(name string) string {
	if len(name) <= maxQuotedName {
		return strconv.Quote(name)
	}
	cut := maxQuotedName
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(name[:cut]), len(name))
}

package broker

import (
	"sort"

	"github.com/magnetar-mq/magnetar/bookie"
)

// tailCache keeps the most recently appended batches of a partition, so
// consumers that keep up with producers never touch the segment store. It
// is bounded by bytes; the oldest batches are evicted first. Not safe for
// concurrent use: the partition's mu guards it.
type tailCache struct {
	maxBytes int
	entries  []bookie.Entry // in offset order
	head     int            // entries[head:] are live
	bytes    int
}

func (c *tailCache) add(e bookie.Entry) {
	if c.maxBytes <= 0 || len(e.Data) > c.maxBytes {
		c.reset()
		return
	}
	c.entries = append(c.entries, e)
	c.bytes += len(e.Data)
	for c.bytes > c.maxBytes {
		c.bytes -= len(c.entries[c.head].Data)
		c.entries[c.head] = bookie.Entry{}
		c.head++
	}
	// Compact once the dead prefix is the larger part, so the slice does
	// not grow without bound.
	if c.head > len(c.entries)/2 {
		n := copy(c.entries, c.entries[c.head:])
		clear(c.entries[n:])
		c.entries = c.entries[:n]
		c.head = 0
	}
}

func (c *tailCache) reset() {
	clear(c.entries)
	c.entries = c.entries[:0]
	c.head = 0
	c.bytes = 0
}

// read returns the cached batches holding offsets from `from` on, up to
// about maxBytes (at least one), or nil when from is not cached.
func (c *tailCache) read(from int64, maxBytes int) []bookie.Entry {
	live := c.entries[c.head:]
	if len(live) == 0 || from < live[0].BaseOffset {
		return nil
	}
	i := sort.Search(len(live), func(i int) bool { return live[i].LastOffset >= from })
	if i == len(live) {
		return nil
	}
	var out []bookie.Entry
	size := 0
	for _, e := range live[i:] {
		if len(out) > 0 && size+len(e.Data) > maxBytes {
			break
		}
		out = append(out, e)
		size += len(e.Data)
	}
	return out
}

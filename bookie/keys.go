package bookie

import "encoding/binary"

// Key spans of the state machine; see doc.go.
var (
	keyApplied   = []byte("bk/a")
	keyRestoring = []byte("bk/r")
	prefixMeta   = []byte("bk/m")
	endMeta      = []byte("bk/n") // prefixMeta's end
	prefixEntry  = []byte("bk/e")
	prefixPin    = []byte("bk/p")
	endPin       = []byte("bk/q") // prefixPin's end
)

// fsmSpans are the key ranges the state machine owns, as [start, end)
// pairs; Restore replaces exactly these.
var fsmSpans = [][2][]byte{
	{keyApplied, []byte("bk/b")},
	{prefixMeta, endMeta},
	{prefixEntry, []byte("bk/f")},
}

func metaKey(segment uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, len(prefixMeta)+8), prefixMeta...), segment)
}

func entryKey(segment uint64, baseOffset int64) []byte {
	k := append(make([]byte, 0, len(prefixEntry)+16), prefixEntry...)
	k = binary.BigEndian.AppendUint64(k, segment)
	return binary.BigEndian.AppendUint64(k, uint64(baseOffset))
}

// entrySpan is the [start, end) key range of a segment's entries.
func entrySpan(segment uint64) (start, end []byte) {
	start = binary.BigEndian.AppendUint64(append([]byte(nil), prefixEntry...), segment)
	if segment == ^uint64(0) {
		return start, []byte("bk/f")
	}
	end = binary.BigEndian.AppendUint64(append([]byte(nil), prefixEntry...), segment+1)
	return start, end
}

// entryKeyOffset returns the base offset in an entry key.
func entryKeyOffset(key []byte) int64 {
	return int64(binary.BigEndian.Uint64(key[len(key)-8:]))
}

// localSpans are key ranges of the state that are this replica's own:
// they are not in snapshot streams, and Restore clears them.
var localSpans = [][2][]byte{
	{prefixPin, endPin},
}

func pinKey(segment uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, len(prefixPin)+8), prefixPin...), segment)
}

// inFSMSpans reports whether key belongs to the state machine.
func inFSMSpans(key []byte) bool {
	for _, s := range fsmSpans {
		if string(key) >= string(s[0]) && string(key) < string(s[1]) {
			return true
		}
	}
	return false
}

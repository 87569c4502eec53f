package diskspace

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Reserve is the free space to keep on the file system of Dir.
type Reserve struct {
	FS  vfs.FS
	Dir string
	Min uint64 // bytes; 0: no reserve
}

// Check returns an error wrapping full when fewer than Min bytes are
// available. A file system that cannot report its usage (an in-memory one)
// passes.
func (r Reserve) Check(full error) error {
	if r.Min == 0 || r.FS == nil {
		return nil
	}
	u, err := r.FS.GetDiskUsage(r.Dir)
	if err != nil || u.AvailBytes >= r.Min {
		return nil
	}
	return fmt.Errorf("%w: %d bytes available in %s, under the %d-byte reserve", full, u.AvailBytes, r.Dir, r.Min)
}

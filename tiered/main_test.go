package tiered_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: a
// store's reader, a listing, or the versitygw process's waiter.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

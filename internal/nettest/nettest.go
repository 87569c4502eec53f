// Package nettest gives tests loopback addresses for servers whose
// addresses must be known before they start (Raft peers, processes told
// their ports by flags).
//
// Asking the kernel for port 0 and closing the listener is racy: the port
// comes from the ephemeral range, which the kernel also hands to every
// outgoing connection (gRPC clients, Raft dialing its peers), so by the time
// the server binds it another socket may hold it. FreeAddrs instead picks
// random ports below the ephemeral range, which outgoing connections never
// use, and checks that each is free right now; two tests would have to pick
// the same random port in the same instant to collide.
package nettest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// portFloor is the lowest port handed out: above the well-known and most
// registered service ports used on developer machines.
const portFloor = 20000

// FreeAddrs returns n distinct 127.0.0.1 addresses whose ports are free now
// and lie outside the kernel's ephemeral port range.
func FreeAddrs(tb testing.TB, n int) []string {
	tb.Helper()
	ceiling := ephemeralStart()
	seen := map[int]bool{}
	var out []string
	for tries := 0; len(out) < n; tries++ {
		if tries > 1000 {
			tb.Fatalf("nettest: no free port found in [%d, %d)", portFloor, ceiling)
		}
		port := portFloor + rand.IntN(ceiling-portFloor)
		if seen[port] {
			continue
		}
		seen[port] = true
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue // taken
		}
		l.Close()
		out = append(out, addr)
	}
	return out
}

// FreeAddr returns one address as FreeAddrs does.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	return FreeAddrs(tb, 1)[0]
}

// ephemeralStart reads the first port of the kernel's ephemeral range
// (Linux), or assumes the IANA range's start elsewhere.
func ephemeralStart() int {
	const fallback = 32768
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return fallback
	}
	var lo, hi int
	if _, err := fmt.Sscan(strings.TrimSpace(string(data)), &lo, &hi); err != nil || lo <= portFloor+1000 {
		return fallback
	}
	return lo
}

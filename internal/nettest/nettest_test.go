package nettest

import (
	"net"
	"strconv"
	"testing"
)

func TestFreeAddrsAreDistinctBindableAndBelowTheEphemeralRange(t *testing.T) {
	addrs := FreeAddrs(t, 20)
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			t.Fatalf("address %s returned twice", a)
		}
		seen[a] = true
		_, p, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(p)
		if port < portFloor || port >= ephemeralStart() {
			t.Fatalf("port %d outside [%d, %d)", port, portFloor, ephemeralStart())
		}
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("address %s not bindable: %v", a, err)
		}
		l.Close()
	}
}

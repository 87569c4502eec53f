package chaos

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/internal/nettest"
)

// helperEnv makes the test binary a helper process (see helperMain).
const helperEnv = "CHAOS_PARTITION_HELPER"

// helperMain is a process of another uid: an echo server on the address
// in $CHAOS_PARTITION_HELPER, which also answers "dial ADDR" lines on stdin
// with "ok" or "fail ..." after trying an echo round trip to ADDR.
func helperMain() int {
	l, err := net.Listen("tcp", os.Getenv(helperEnv))
	if err != nil {
		fmt.Println("fail", err)
		return 1
	}
	go func() { // lives as long as the helper process
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c) }() // echo until the peer closes
		}
	}()
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		addr, ok := strings.CutPrefix(sc.Text(), "dial ")
		if !ok {
			continue
		}
		if err := echo(addr); err != nil {
			fmt.Println("fail", err)
		} else {
			fmt.Println("ok")
		}
	}
	return 0
}

// echo opens a connection to addr and makes one round trip.
func echo(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	return roundTrip(c)
}

func roundTrip(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("x")); err != nil {
		return err
	}
	_, err := io.ReadFull(c, make([]byte, 1))
	return err
}

// A node cut off by netFaults can neither be reached nor reach anyone:
// new connections fail both ways, and a connection opened before goes
// silent; after heal everything works again.
func TestPartitionBlackholesBothDirections(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (iptables, processes as other uids)")
	}
	addrs := nettest.FreeAddrs(t, 2)
	mine, theirs := addrs[0], addrs[1]
	l, err := net.Listen("tcp", mine)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // ends when l is closed
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c) }() // echo until the peer closes
		}
	}()

	// The test binary, where another uid can run it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	must(t, os.Chmod(dir, 0o755))
	must(t, os.Chmod(filepath.Dir(dir), 0o755))
	exe := filepath.Join(dir, "helper")
	data, err := os.ReadFile(self)
	must(t, err)
	must(t, os.WriteFile(exe, data, 0o755))

	nd := &node{name: "helper", uid: uidBase() + 15, addrs: map[string]string{"any": theirs}}
	cmd := exec.Command(exe, "-test.run", "^TestPartitionBlackholesBothDirections$")
	cmd.Env = append(os.Environ(), helperEnv+"="+theirs)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL,
		Credential: &syscall.Credential{Uid: uint32(nd.uid), Gid: uint32(nd.uid), NoSetGroups: true}}
	stdin, err := cmd.StdinPipe()
	must(t, err)
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	out := bufio.NewScanner(stdout)
	if !out.Scan() || out.Text() != "ready" {
		t.Fatalf("helper: %q %v", out.Text(), out.Err())
	}
	helperDials := func() error {
		fmt.Fprintf(stdin, "dial %s\n", mine)
		if !out.Scan() {
			t.Fatalf("helper gone: %v", out.Err())
		}
		if out.Text() == "ok" {
			return nil
		}
		return fmt.Errorf("%s", out.Text())
	}

	if err := echo(theirs); err != nil {
		t.Fatalf("before the partition, the node is unreachable: %v", err)
	}
	if err := helperDials(); err != nil {
		t.Fatalf("before the partition, the node cannot reach out: %v", err)
	}
	open, err := net.Dial("tcp", theirs)
	must(t, err)
	defer open.Close()
	must(t, roundTrip(open))

	nf := newNetFaults(t)
	must(t, nf.isolate(nd))
	if err := echo(theirs); err == nil {
		t.Error("cut off, the node still accepts connections")
	}
	if err := helperDials(); err == nil {
		t.Error("cut off, the node still opens connections")
	}
	if err := roundTrip(open); err == nil {
		t.Error("cut off, the node still answers on a connection opened before")
	}

	must(t, nf.heal())
	if err := echo(theirs); err != nil {
		t.Errorf("healed, the node is unreachable: %v", err)
	}
	if err := helperDials(); err != nil {
		t.Errorf("healed, the node cannot reach out: %v", err)
	}
}

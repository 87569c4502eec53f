package storetest

import (
	"errors"
	"fmt"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/magnetar-mq/magnetar/internal/nettest"
)

// VersityGWVersion is the versitygw release the tests run, installed by
// `make tools`.
const VersityGWVersion = "v1.8.0"

// S3Server is a running S3-compatible server with one empty bucket.
type S3Server struct {
	Endpoint  string // host:port, plain HTTP
	AccessKey string
	SecretKey string
	Bucket    string
	Region    string
}

// versityGWPath finds the versitygw binary: on PATH, or where `go install`
// puts it (GOBIN, or GOPATH/bin).
func versityGWPath() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	for _, gopath := range filepath.SplitList(build.Default.GOPATH) {
		dirs = append(dirs, filepath.Join(gopath, "bin"))
	}
	for _, dir := range dirs {
		p := filepath.Join(dir, "versitygw")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("versitygw is not on PATH nor in %q: run `make tools` (it installs versitygw %s)", dirs, VersityGWVersion)
}

// StartVersityGW starts a real S3 server, versitygw with its posix backend
// on a temporary directory, on a free loopback port, and creates a bucket.
// The server is stopped (and waited for) when the test ends. A missing
// binary fails the test: the S3 tests are never skipped.
func StartVersityGW(t testing.TB) S3Server {
	t.Helper()
	bin, err := versityGWPath()
	if err != nil {
		t.Fatal(err)
	}
	srv := S3Server{
		Endpoint:  nettest.FreeAddr(t),
		AccessKey: "magnetar-test",
		SecretKey: "magnetar-test-secret",
		Bucket:    "magnetar-test",
		Region:    "us-east-1",
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "versitygw.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the process has its own descriptor
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--access", srv.AccessKey, "--secret", srv.SecretKey,
		"--region", srv.Region, "--port", srv.Endpoint, "--quiet", "posix", data)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting versitygw: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	serverLog := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("versitygw did not stop within 10s of SIGINT; killing it. Its log:\n%s", serverLog())
			cmd.Process.Kill()
			<-exited
		}
	})

	transport, err := minio.DefaultTransport(false)
	if err != nil {
		t.Fatal(err)
	}
	defer transport.CloseIdleConnections()
	client, err := minio.New(srv.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""),
		Transport:    transport,
		Region:       srv.Region,
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   1,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Poll until the server answers by creating the bucket.
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := client.MakeBucket(t.Context(), srv.Bucket, minio.MakeBucketOptions{Region: srv.Region})
		if err == nil {
			return srv
		}
		select {
		case werr := <-exited:
			exited <- werr // for the cleanup
			t.Fatalf("versitygw exited (%v) before it served; its log:\n%s", werr, serverLog())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not create bucket %s within 15s: %v; its log:\n%s", srv.Bucket, errors.Unwrap(err), serverLog())
		}
	}
}

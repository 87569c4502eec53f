package tiered_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/magnetar-mq/magnetar/tiered"
	"github.com/magnetar-mq/magnetar/tiered/storetest"
)

// TestS3StoreConformance runs the conformance suite against a real S3
// server (versitygw), each store under a prefix of its own in one bucket.
func TestS3StoreConformance(t *testing.T) {
	srv := storetest.StartVersityGW(t)
	var stores atomic.Int64
	unsafe := regexp.MustCompile(`[^A-Za-z0-9_-]+`)
	storetest.RunConformance(t, func(t *testing.T) tiered.ObjectStore {
		name := unsafe.ReplaceAllString(t.Name(), "_")
		name = name[max(0, len(name)-100):]
		s, err := tiered.NewS3Store(tiered.S3Config{
			Endpoint:  srv.Endpoint,
			Bucket:    srv.Bucket,
			Region:    srv.Region,
			AccessKey: srv.AccessKey,
			SecretKey: srv.SecretKey,
			PathStyle: true,
			Prefix:    fmt.Sprintf("conformance/%s-%d", name, stores.Add(1)),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestS3StoreReadsItsSecretKeyFromAFileAndFailsWithAWrongOne(t *testing.T) {
	srv := storetest.StartVersityGW(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name, secret string
		ok           bool
	}{
		{"the right key, with a newline", srv.SecretKey + "\n", true},
		{"a wrong key", "not-the-secret", false},
	} {
		file := filepath.Join(dir, "secret")
		if err := os.WriteFile(file, []byte(tc.secret), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := tiered.NewS3Store(tiered.S3Config{
			Endpoint: srv.Endpoint, Bucket: srv.Bucket, Region: srv.Region, PathStyle: true,
			AccessKey: srv.AccessKey, SecretKeyFile: file,
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		err = s.Put(t.Context(), "k", strings.NewReader("x"), 1)
		s.Close()
		if ok := err == nil; ok != tc.ok {
			t.Errorf("%s: Put = %v, want success %v", tc.name, err, tc.ok)
		}
	}
}

func TestS3ConfigFlagsAndValidate(t *testing.T) {
	var c tiered.S3Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags("tiered.s3.", fs)
	err := fs.Parse([]string{"--tiered.s3.endpoint=s3.local:9000", "--tiered.s3.bucket=cold",
		"--tiered.s3.access-key=AK", "--tiered.s3.secret-key-file=/run/secrets/s3", "--tiered.s3.path-style",
		"--tiered.s3.prefix=cluster-a/cold"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if !c.TLS || c.PartSize != tiered.DefaultS3PartSize || !c.PathStyle || c.Prefix != "cluster-a/cold" {
		t.Fatalf("flags gave %+v, want tls on, the default part size, path style and the prefix", c)
	}
	for _, tc := range []struct {
		name   string
		change func(*tiered.S3Config)
		want   string
	}{
		{"no endpoint", func(c *tiered.S3Config) { c.Endpoint = "" }, "endpoint is empty"},
		{"an endpoint with a scheme", func(c *tiered.S3Config) { c.Endpoint = "https://s3.local" }, "has a scheme"},
		{"an endpoint with a path", func(c *tiered.S3Config) { c.Endpoint = "s3.local/b" }, "not host[:port]"},
		{"no bucket", func(c *tiered.S3Config) { c.Bucket = "" }, "bucket"},
		{"an uppercase bucket", func(c *tiered.S3Config) { c.Bucket = "Cold" }, "bucket"},
		{"a bucket ending in '-'", func(c *tiered.S3Config) { c.Bucket = "cold-" }, "bucket"},
		{"no access key", func(c *tiered.S3Config) { c.AccessKey = "" }, "access-key"},
		{"no secret", func(c *tiered.S3Config) { c.SecretKeyFile = "" }, "secret-key-file is empty"},
		{"two secrets", func(c *tiered.S3Config) { c.SecretKey = "s" }, "both"},
		{"a CA without TLS", func(c *tiered.S3Config) { c.TLS = false; c.TLSCAFile = "ca.pem" }, "tls is off"},
		{"a prefix with '..'", func(c *tiered.S3Config) { c.Prefix = "a/../b" }, "prefix"},
		{"a prefix ending in '/'", func(c *tiered.S3Config) { c.Prefix = "a/" }, "prefix"},
		{"a long prefix", func(c *tiered.S3Config) { c.Prefix = strings.Repeat("p/", 200) + "p" }, "prefix longer"},
		{"a small part size", func(c *tiered.S3Config) { c.PartSize = 1 << 20 }, "part-size-bytes"},
		{"a huge part size", func(c *tiered.S3Config) { c.PartSize = 6 << 30 }, "part-size-bytes"},
	} {
		bad := c
		tc.change(&bad)
		err := bad.Validate()
		if !errors.Is(err, tiered.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want ErrInvalidConfig about %q", tc.name, err, tc.want)
		}
		if _, err := tiered.NewS3Store(bad); !errors.Is(err, tiered.ErrInvalidConfig) {
			t.Errorf("%s: NewS3Store = %v, want ErrInvalidConfig", tc.name, err)
		}
	}
}

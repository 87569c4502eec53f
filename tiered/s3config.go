package tiered

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// Limits and defaults of S3Config.
const (
	// DefaultS3PartSize is S3Config.PartSize's default. A Put larger than
	// the part size is uploaded in parts, each held in memory while it is
	// sent: one part's bytes per Put in flight.
	DefaultS3PartSize = 16 << 20
	// MinS3PartSize and MaxS3PartSize are the part sizes S3 accepts.
	MinS3PartSize = 5 << 20
	MaxS3PartSize = 5 << 30
	// MaxPrefixBytes is the longest S3Config.Prefix: with a key of
	// MaxKeyBytes and the '/' between them, an object name stays within
	// S3's 1024 bytes.
	MaxPrefixBytes = 256
)

// ErrInvalidConfig is wrapped by S3Config.Validate's errors.
var ErrInvalidConfig = errors.New("tiered: invalid configuration")

// S3Config says where an S3Store keeps its objects and how it reaches them.
// It is filled from flags (RegisterFlags), a YAML file or MAGNETAR_*
// environment variables like every component's config.
type S3Config struct {
	// Endpoint is the server's host[:port], without a scheme (TLS says
	// which): s3.amazonaws.com, minio.local:9000.
	Endpoint string `yaml:"endpoint"`
	// Bucket holds the objects; it must exist.
	Bucket string `yaml:"bucket"`
	// Region is the bucket's region; empty: asked of the server once
	// (GetBucketLocation), which needs that permission.
	Region string `yaml:"region"`
	// AccessKey is the access key ID of the credentials.
	AccessKey string `yaml:"access-key"`
	// SecretKeyFile names a file holding the secret access key (a
	// trailing newline is ignored). The key itself is never a flag or a
	// setting, which would show it in process listings and config files.
	SecretKeyFile string `yaml:"secret-key-file"`
	// SecretKey is the secret access key, for programs that hold it
	// already; it takes the place of SecretKeyFile.
	SecretKey string `yaml:"-"`
	// PathStyle addresses the bucket in the path (host/bucket/key), as
	// most S3-compatible servers need; otherwise the client chooses
	// (virtual-host style, bucket.host/key, where the endpoint allows).
	PathStyle bool `yaml:"path-style"`
	// TLS connects with HTTPS; TLSCAFile, when set, holds the PEM
	// certificates that sign the server's (default: the system's).
	TLS       bool   `yaml:"tls"`
	TLSCAFile string `yaml:"tls-ca-file"`
	// Prefix, when set, is put with a '/' before every key, so that
	// several deployments (or tests) share a bucket: a valid key of at
	// most MaxPrefixBytes.
	Prefix string `yaml:"prefix"`
	// PartSize is the size of the parts of a multipart upload, used for
	// objects larger than it, in [MinS3PartSize, MaxS3PartSize]; zero
	// means DefaultS3PartSize.
	PartSize int64 `yaml:"part-size-bytes"`
}

// RegisterFlags registers the fields as flags named prefix+yaml tag, e.g.
// prefix "tiered.s3." gives --tiered.s3.endpoint.
func (c *S3Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.StringVar(&c.Endpoint, prefix+"endpoint", "", "S3 server as host[:port], without a scheme (see tls)")
	fs.StringVar(&c.Bucket, prefix+"bucket", "", "S3 bucket holding the cold tier's objects; it must exist")
	fs.StringVar(&c.Region, prefix+"region", "", "region of the S3 bucket (empty: asked of the server)")
	fs.StringVar(&c.AccessKey, prefix+"access-key", "", "S3 access key ID")
	fs.StringVar(&c.SecretKeyFile, prefix+"secret-key-file", "", "file holding the S3 secret access key")
	fs.BoolVar(&c.PathStyle, prefix+"path-style", false, "address the bucket in the URL path (host/bucket/key), as most S3-compatible servers need")
	fs.BoolVar(&c.TLS, prefix+"tls", true, "connect to the S3 server with HTTPS")
	fs.StringVar(&c.TLSCAFile, prefix+"tls-ca-file", "", "PEM CA certificates that sign the S3 server's certificate (default: the system's)")
	fs.StringVar(&c.Prefix, prefix+"prefix", "", "prefix of every object name in the bucket, followed by '/' (empty: none)")
	fs.Int64Var(&c.PartSize, prefix+"part-size-bytes", DefaultS3PartSize, "part size of multipart uploads (5 MiB to 5 GiB); one part per upload in flight is held in memory")
}

// Validate reports a config that cannot work, without reading files or
// reaching the server.
func (c *S3Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: s3 "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	switch {
	case c.Endpoint == "":
		bad("endpoint is empty")
	case strings.Contains(c.Endpoint, "://"):
		bad("endpoint %q has a scheme: give host[:port] and set tls", c.Endpoint)
	case strings.ContainsAny(c.Endpoint, "/?# "):
		bad("endpoint %q is not host[:port]", c.Endpoint)
	}
	if err := validateBucket(c.Bucket); err != nil {
		bad("bucket %q: %v", c.Bucket, err)
	}
	if c.AccessKey == "" {
		bad("access-key is empty")
	}
	switch {
	case c.SecretKey == "" && c.SecretKeyFile == "":
		bad("secret-key-file is empty")
	case c.SecretKey != "" && c.SecretKeyFile != "":
		bad("both a secret key and secret-key-file are set")
	}
	if c.TLSCAFile != "" && !c.TLS {
		bad("tls-ca-file is set but tls is off")
	}
	if c.Prefix != "" {
		if err := validateKey(c.Prefix); err != nil {
			bad("prefix %q: %v", c.Prefix, err)
		} else if len(c.Prefix) > MaxPrefixBytes {
			bad("prefix longer than %d bytes", MaxPrefixBytes)
		}
	}
	if c.PartSize != 0 && (c.PartSize < MinS3PartSize || c.PartSize > MaxS3PartSize) {
		bad("part-size-bytes %d is outside [%d, %d]", c.PartSize, MinS3PartSize, MaxS3PartSize)
	}
	return errors.Join(errs...)
}

// validateBucket checks S3's rules for bucket names: 3 to 63 lowercase
// letters, digits, '.' and '-', starting and ending with a letter or digit.
func validateBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return errors.New("not 3 to 63 characters")
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (c != '.' && c != '-' || i == 0 || i == len(b)-1) {
			return fmt.Errorf("character %q at %d", c, i)
		}
	}
	return nil
}

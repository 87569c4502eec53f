package tiered

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Store is an ObjectStore in a bucket of an S3-compatible server (AWS
// S3, MinIO, Ceph RGW, versitygw...), through minio-go. The object "k" is
// the S3 object Prefix+"/"+"k" (or "k" without a prefix).
//
// A Put is one PUT, or a multipart upload for objects larger than the
// part size; S3 makes either visible whole, and an upload that fails is
// aborted (a bucket lifecycle rule that expires incomplete multipart
// uploads cleans up after a process that died mid-upload). GetRange is a
// GET with a Range header; List pages with ListObjectsV2, whose order is
// the keys' byte order.
//
// The store does not retry (minio-go's own retries are turned off): a call
// makes one attempt, so its latency and errors are the caller's to see,
// and the caller retries with its own backoff. The context bounds each
// call; there is no other timeout.
type S3Store struct {
	client    *minio.Client
	transport *http.Transport
	bucket    string
	prefix    string // "" or Prefix+"/"
	partSize  uint64
}

var _ ObjectStore = (*S3Store)(nil)

// NewS3Store validates cfg, reads its secret key file and CA file, and
// returns a store. It does not reach the server: a wrong endpoint,
// credentials or bucket show in the first call.
func NewS3Store(cfg S3Config) (*S3Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	secret := cfg.SecretKey
	if cfg.SecretKeyFile != "" {
		b, err := os.ReadFile(cfg.SecretKeyFile)
		if err != nil {
			return nil, fmt.Errorf("tiered: s3 secret key: %w", err)
		}
		secret = strings.TrimRight(string(b), "\r\n")
		if secret == "" {
			return nil, fmt.Errorf("%w: s3 secret key file %s is empty", ErrInvalidConfig, cfg.SecretKeyFile)
		}
	}
	transport, err := minio.DefaultTransport(cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("tiered: s3 transport: %w", err)
	}
	if cfg.TLSCAFile != "" {
		pem, err := os.ReadFile(cfg.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("tiered: s3 tls-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: s3 tls-ca-file %s holds no PEM certificate", ErrInvalidConfig, cfg.TLSCAFile)
		}
		if transport.TLSClientConfig == nil {
			transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		transport.TLSClientConfig.RootCAs = pool
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, secret, ""),
		Secure:       cfg.TLS,
		Transport:    transport,
		Region:       cfg.Region,
		BucketLookup: lookup,
		MaxRetries:   1, // no retries: the caller's (see S3Store)
	})
	if err != nil {
		return nil, fmt.Errorf("tiered: s3 client: %w", err)
	}
	partSize := cfg.PartSize
	if partSize == 0 {
		partSize = DefaultS3PartSize
	}
	s := &S3Store{client: client, transport: transport, bucket: cfg.Bucket, partSize: uint64(partSize)}
	if cfg.Prefix != "" {
		s.prefix = cfg.Prefix + "/"
	}
	return s, nil
}

// Close closes the store's idle connections.
func (s *S3Store) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// Put implements ObjectStore.
func (s *S3Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("tiered: put %q: negative size %d", key, size)
	}
	_, err := s.client.PutObject(ctx, s.bucket, s.prefix+key, r, size, minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    s.partSize,
	})
	if err != nil {
		return s.wrap(ctx, "put", key, err)
	}
	return nil
}

// GetRange implements ObjectStore. The GET is sent before it returns, so
// that an absent object or a bad range is its error rather than the
// reader's.
func (s *S3Store) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("%w: get %q from %d", ErrOutOfRange, key, off)
	}
	if n == 0 {
		return s.emptyRange(ctx, key, off)
	}
	var opts minio.GetObjectOptions
	switch {
	case n > 0:
		opts.SetRange(off, off+n-1)
	case off > 0:
		opts.SetRange(off, 0) // from off to the end
	}
	obj, err := s.client.GetObject(ctx, s.bucket, s.prefix+key, opts)
	if err != nil {
		return nil, s.wrap(ctx, "get", key, err)
	}
	if _, err := obj.Stat(); err != nil { // sends the GET
		obj.Close()
		if minio.ToErrorResponse(err).StatusCode == http.StatusRequestedRangeNotSatisfiable {
			// The range starts at or after the end (or the object is
			// empty): empty if it starts right at the end.
			return s.emptyRange(ctx, key, off)
		}
		return nil, s.wrap(ctx, "get", key, err)
	}
	return obj, nil
}

// emptyRange returns an empty reader if the object exists and off is
// within it or at its end.
func (s *S3Store) emptyRange(ctx context.Context, key string, off int64) (io.ReadCloser, error) {
	oi, err := s.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	if off > oi.Size {
		return nil, fmt.Errorf("%w: get %q from %d: the object has %d bytes", ErrOutOfRange, key, off, oi.Size)
	}
	return io.NopCloser(bytes.NewReader(nil)), nil
}

// Stat implements ObjectStore.
func (s *S3Store) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return ObjectInfo{}, err
	}
	oi, err := s.client.StatObject(ctx, s.bucket, s.prefix+key, minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, s.wrap(ctx, "stat", key, err)
	}
	return ObjectInfo{Key: key, Size: oi.Size, ETag: oi.ETag, ModTime: oi.LastModified}, nil
}

// Delete implements ObjectStore.
func (s *S3Store) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	err := s.client.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{})
	if err != nil {
		if err := s.wrap(ctx, "delete", key, err); !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}

// List implements ObjectStore. Names in the bucket that are not valid keys
// (a directory marker "x/" another tool wrote) are skipped.
func (s *S3Store) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if err := validatePrefix(prefix); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the listing if fn stops it
	objects := s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{
		Prefix:    s.prefix + prefix,
		Recursive: true,
	})
	for obj := range objects {
		if obj.Err != nil {
			return s.wrap(ctx, "list", prefix, obj.Err)
		}
		key, ok := strings.CutPrefix(obj.Key, s.prefix)
		if !ok || validateKey(key) != nil {
			continue
		}
		if err := fn(ObjectInfo{Key: key, Size: obj.Size, ETag: obj.ETag, ModTime: obj.LastModified}); err != nil {
			return err
		}
	}
	return nil
}

// wrap turns a minio-go error into the store's: ErrNotFound for a missing
// object, the context's error when the context ended.
func (s *S3Store) wrap(ctx context.Context, op, key string, err error) error {
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return fmt.Errorf("%w: %s %q", ErrNotFound, op, key)
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("tiered: s3 %s %q: %w (%v)", op, key, ctxErr, err)
	}
	return fmt.Errorf("tiered: s3 %s %q: %w", op, key, err)
}

package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Key limits. RFC 7518 §3.2 requires an HMAC key at least as long as the
// hash (256 bits for HS256); jjwt, which Pulsar uses, enforces the same,
// so every Pulsar secret key passes.
const (
	MinSecretKeyBytes = 32
	MinRSAKeyBits     = 2048
)

// Base64KeyPrefix starts a secret key file that holds the key in standard
// base64 rather than as raw bytes.
const Base64KeyPrefix = "base64:"

// maxKeyFileBytes bounds a key file; keys are a few KiB at most, so a
// larger file is a wrong path.
const maxKeyFileBytes = 1 << 20

// errPublicKeyFile is returned where a private key is expected.
var errPublicKeyFile = errors.New("holds a public key")

// GenerateSecretKey returns a new HS256 secret key: 32 random bytes.
func GenerateSecretKey() []byte {
	key := make([]byte, MinSecretKeyBytes)
	rand.Read(key) // never fails (crypto/rand)
	return key
}

// EncodeSecretKey returns key in the base64 form of a secret key file:
// Base64KeyPrefix, the key in standard base64, a newline.
func EncodeSecretKey(key []byte) []byte {
	return []byte(Base64KeyPrefix + base64.StdEncoding.EncodeToString(key) + "\n")
}

// GenerateKeyPair returns a new key pair for alg, "RS256" (RSA 2048) or
// "ES256" (ECDSA P-256), as PEM: the private key in PKCS#8, the public key
// in PKIX.
func GenerateKeyPair(alg string) (privatePEM, publicPEM []byte, err error) {
	var priv crypto.Signer
	switch alg {
	case "RS256":
		priv, err = rsa.GenerateKey(rand.Reader, MinRSAKeyBits)
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, nil, fmt.Errorf("auth: key pair algorithm %q: want RS256 or ES256", alg)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("auth: generating a key pair: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: encoding the private key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("auth: encoding the public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), nil
}

// LoadSigningKey reads a key that signs tokens: a PEM private key (PKCS#8,
// PKCS#1 "RSA PRIVATE KEY" or SEC1 "EC PRIVATE KEY"), the DER PKCS#8 key
// `pulsar tokens create-key-pair` writes, or else a secret key file (raw
// bytes, or Base64KeyPrefix and base64). It returns a []byte secret, an
// *rsa.PrivateKey or an *ecdsa.PrivateKey, ready for CreateToken.
func LoadSigningKey(path string) (any, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	key, err := parseSigningKey(data)
	if err != nil {
		return nil, fmt.Errorf("auth: key file %s: %w", path, err)
	}
	return key, nil
}

func parseSigningKey(data []byte) (any, error) {
	if block, _ := pem.Decode(data); block != nil {
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE":
			return nil, errPublicKeyFile
		default:
			return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("PEM %s: %w", block.Type, err)
		}
		return checkSigningKey(key)
	}
	if key, err := x509.ParsePKCS8PrivateKey(data); err == nil {
		return checkSigningKey(key)
	}
	if _, err := x509.ParsePKIXPublicKey(data); err == nil {
		return nil, errPublicKeyFile
	}
	return parseSecretKey(data)
}

// checkSigningKey admits the private keys CreateToken signs with.
func checkSigningKey(key any) (any, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if _, err := checkPublicKey(&k.PublicKey); err != nil {
			return nil, err
		}
	case *ecdsa.PrivateKey:
		if _, err := checkPublicKey(&k.PublicKey); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unsupported private key type %T: want RSA or ECDSA", key)
	}
	return key, nil
}

// loadVerifyingKey reads the key of a TokenConfig and returns it with the
// algorithms it verifies.
func loadVerifyingKey(c TokenConfig) (key any, algs []string, err error) {
	path := c.SecretKeyFile
	if path == "" {
		path = c.PublicKeyFile
	}
	data, err := readKeyFile(path)
	if err != nil {
		return nil, nil, err
	}
	if c.SecretKeyFile != "" {
		key, err = parseSecretKey(data)
		algs = []string{"HS256", "HS384", "HS512"}
	} else {
		key, err = parsePublicKey(data)
		if err == nil {
			algs, err = checkPublicKey(key)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("auth: key file %s: %w", path, err)
	}
	return key, algs, nil
}

// parseSecretKey reads a secret key file's content: raw bytes, used as
// they are (a trailing newline is part of the key), or Base64KeyPrefix
// and the key in standard base64 (padded or not; surrounding white space
// is ignored).
func parseSecretKey(data []byte) ([]byte, error) {
	key := data
	if rest, ok := bytes.CutPrefix(data, []byte(Base64KeyPrefix)); ok {
		s := strings.TrimSpace(string(rest))
		var err error
		if key, err = base64.StdEncoding.DecodeString(s); err != nil {
			if key, err = base64.RawStdEncoding.DecodeString(s); err != nil {
				return nil, fmt.Errorf("secret key after %q is not base64", Base64KeyPrefix)
			}
		}
	}
	if len(key) < MinSecretKeyBytes {
		return nil, fmt.Errorf("secret key of %d bytes: want at least %d", len(key), MinSecretKeyBytes)
	}
	return key, nil
}

// parsePublicKey reads a PEM public key ("PUBLIC KEY", "RSA PUBLIC KEY",
// or the key of a "CERTIFICATE"), or a DER PKIX public key.
func parsePublicKey(data []byte) (any, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		key, err := x509.ParsePKIXPublicKey(data)
		if err != nil {
			return nil, errors.New("neither a PEM nor a DER public key")
		}
		return key, nil
	}
	switch block.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
		return nil, errors.New("holds a private key: give the public key (a leaked verifier file must not sign)")
	}
	return nil, fmt.Errorf("PEM block %q is not a public key", block.Type)
}

// checkPublicKey admits RSA keys of MinRSAKeyBits or more and ECDSA keys on
// P-256, P-384 or P-521, and returns the algorithms each verifies.
func checkPublicKey(key any) ([]string, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N == nil {
			return nil, errors.New("RSA key without a modulus")
		}
		if k.N.BitLen() < MinRSAKeyBits {
			return nil, fmt.Errorf("RSA key of %d bits: want at least %d", k.N.BitLen(), MinRSAKeyBits)
		}
		return []string{"RS256", "RS384", "RS512"}, nil
	case *ecdsa.PublicKey:
		alg, err := ecdsaAlg(k.Curve)
		if err != nil {
			return nil, err
		}
		return []string{alg}, nil
	}
	return nil, fmt.Errorf("unsupported public key type %T: want RSA or ECDSA", key)
}

// ecdsaAlg is the one algorithm of a curve (RFC 7518 §3.4).
func ecdsaAlg(c elliptic.Curve) (string, error) {
	switch c {
	case elliptic.P256():
		return "ES256", nil
	case elliptic.P384():
		return "ES384", nil
	case elliptic.P521():
		return "ES512", nil
	case nil:
		return "", errors.New("ECDSA key without a curve")
	}
	return "", fmt.Errorf("unsupported ECDSA curve %s: want P-256, P-384 or P-521", c.Params().Name)
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("auth: reading %s: %w", path, err)
	}
	if len(data) > maxKeyFileBytes {
		return nil, fmt.Errorf("auth: key file %s is larger than %d bytes", path, maxKeyFileBytes)
	}
	return data, nil
}

package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/magnetar-mq/magnetar/internal/auth/authtest"
)

func TestSecretKeyFilesAreRawOrBase64(t *testing.T) {
	t.Parallel()
	key := GenerateSecretKey()
	if len(key) != 32 {
		t.Fatalf("GenerateSecretKey: %d bytes, want 32", len(key))
	}
	text := []byte("a passphrase of more than 32 bytes, used as it is\n")
	tests := []struct {
		name    string
		file    []byte
		want    []byte
		wantErr string
	}{
		{"raw bytes", key, key, ""},
		{"raw text keeps its newline", text, text, ""},
		{"base64 as EncodeSecretKey writes it", EncodeSecretKey(key), key, ""},
		{"base64 without padding or newline", []byte(Base64KeyPrefix + base64.RawStdEncoding.EncodeToString(key)), key, ""},
		{"base64 that is not", []byte(Base64KeyPrefix + "!!!"), nil, "is not base64"},
		{"a short raw key", []byte("too short"), nil, "secret key of 9 bytes: want at least 32"},
		{"a short base64 key", []byte(Base64KeyPrefix + base64.StdEncoding.EncodeToString([]byte("short"))), nil, "want at least 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, "secret", tt.file)
			got, err := LoadSigningKey(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				if _, err := NewVerifier(TokenConfig{SecretKeyFile: path}); err == nil {
					t.Fatal("NewVerifier accepted the key")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got.([]byte)) != string(tt.want) {
				t.Fatalf("key %q, want %q", got, tt.want)
			}
			// A token signed with the key verifies with the same file.
			tok, err := CreateToken(got, "r", 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkVerify(t, verifier(t, TokenConfig{SecretKeyFile: path}), tok, "r", "")
		})
	}
}

func TestGenerateKeyPairSignsAndVerifies(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			priv, pub, err := GenerateKeyPair(alg)
			if err != nil {
				t.Fatal(err)
			}
			key, err := LoadSigningKey(writeFile(t, "private.pem", priv))
			if err != nil {
				t.Fatal(err)
			}
			tok, err := CreateToken(key, "carol", time.Minute, nil)
			if err != nil {
				t.Fatal(err)
			}
			if h, _, _ := Inspect(tok); h["alg"] != alg {
				t.Fatalf("alg %v, want %s", h["alg"], alg)
			}
			checkVerify(t, verifier(t, TokenConfig{PublicKeyFile: writeFile(t, "public.pem", pub)}), tok, "carol", "")
		})
	}
	if _, _, err := GenerateKeyPair("HS256"); err == nil {
		t.Fatal("GenerateKeyPair(HS256) made a pair")
	}
}

func TestPrivateKeyFormats(t *testing.T) {
	t.Parallel()
	k := loadTestKeys(t)
	pkcs8 := func(key any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	sec1, err := x509.MarshalECPrivateKey(k.p256)
	if err != nil {
		t.Fatal(err)
	}
	pkixDER, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	tests := []struct {
		name    string
		file    []byte
		pubFile string // verifies what the key signs
		wantErr string
	}{
		{"PKCS#8 RSA", block("PRIVATE KEY", pkcs8(k.rsa)), k.rsaPubFile, ""},
		{"PKCS#1 RSA", block("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k.rsa)), k.rsaPubFile, ""},
		{"PKCS#8 EC", block("PRIVATE KEY", pkcs8(k.p256)), k.p256File, ""},
		{"SEC1 EC", block("EC PRIVATE KEY", sec1), k.p256File, ""},
		{"DER PKCS#8 as Pulsar writes", pkcs8(k.p384), k.p384File, ""},
		{"a PEM public key", publicPEM(&k.rsa.PublicKey), "", "holds a public key"},
		{"a DER public key", pkixDER, "", "holds a public key"},
		{"a certificate", authtest.NewCA(t).CertPEM, "", "holds a public key"},
		{"a broken PEM key", block("PRIVATE KEY", []byte("junk")), "", "PEM PRIVATE KEY"},
		{"an unknown PEM block", block("OPENSSH PRIVATE KEY", []byte("x")), "", "is not a private key"},
		{"a small RSA key", block("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small)), "", "RSA key of 1024 bits"},
		{"a P-224 key", block("PRIVATE KEY", pkcs8(p224)), "", "unsupported ECDSA curve P-224"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, err := LoadSigningKey(writeFile(t, "key", tt.file))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tok, err := CreateToken(key, "dave", 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkVerify(t, verifier(t, TokenConfig{PublicKeyFile: tt.pubFile}), tok, "dave", "")
		})
	}
}

func TestPublicKeyFormats(t *testing.T) {
	t.Parallel()
	k := loadTestKeys(t)
	tok, err := CreateToken(k.rsa, "erin", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	pkixDER, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(k.rsa)
	if err != nil {
		t.Fatal(err)
	}
	block := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	tests := []struct {
		name    string
		file    []byte
		wantErr string
	}{
		{"PEM PKIX", publicPEM(&k.rsa.PublicKey), ""},
		{"PEM PKCS#1", block("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)), ""},
		{"DER PKIX as Pulsar writes", pkixDER, ""},
		{"a private key", block("PRIVATE KEY", pkcs8), "holds a private key"},
		{"garbage", []byte("not a key"), "neither a PEM nor a DER public key"},
		{"an unknown PEM block", block("SECRET", []byte("x")), "is not a public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := NewVerifier(TokenConfig{PublicKeyFile: writeFile(t, "pub", tt.file)})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkVerify(t, v, tok, "erin", "")
		})
	}

	t.Run("a certificate's key", func(t *testing.T) {
		t.Parallel()
		ca := authtest.NewCA(t)
		leaf := ca.Issue(t, "token-signer")
		signer, err := LoadSigningKey(writeFile(t, "leaf.key", leaf.KeyPEM))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := CreateToken(signer, "frank", 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkVerify(t, verifier(t, TokenConfig{PublicKeyFile: writeFile(t, "leaf.pem", leaf.CertPEM)}), tok, "frank", "")
	})
}

func TestNewVerifierRefusesBadConfigurations(t *testing.T) {
	t.Parallel()
	k := loadTestKeys(t)
	big := writeFile(t, "big", make([]byte, maxKeyFileBytes+1))
	tests := []struct {
		name    string
		cfg     TokenConfig
		wantErr string
	}{
		{"both keys", TokenConfig{SecretKeyFile: k.secretFile, PublicKeyFile: k.rsaPubFile}, "not both"},
		{"a missing file", TokenConfig{SecretKeyFile: "/nonexistent/key"}, "no such file"},
		{"a huge file", TokenConfig{PublicKeyFile: big}, "larger than"},
		{"a negative clock skew", TokenConfig{SecretKeyFile: k.secretFile, ClockSkew: -time.Second}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewVerifier(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

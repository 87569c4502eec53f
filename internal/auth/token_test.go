package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// keys are the signing keys of the tests, made once (RSA is slow), and
// their verifying key files.
type keys struct {
	secret                 []byte
	rsa                    *rsa.PrivateKey
	p256, p384, p521       *ecdsa.PrivateKey
	secretFile, rsaPubFile string
	p256File, p384File     string
	p521File               string
}

var (
	testKeysOnce sync.Once
	testKeys     keys
	testKeysDir  string
)

func loadTestKeys(t testing.TB) keys {
	t.Helper()
	testKeysOnce.Do(func() {
		dir, err := os.MkdirTemp("", "auth-keys-")
		if err != nil {
			panic(err)
		}
		testKeysDir = dir
		k := keys{secret: GenerateSecretKey()}
		if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		for _, c := range []struct {
			curve elliptic.Curve
			to    **ecdsa.PrivateKey
		}{{elliptic.P256(), &k.p256}, {elliptic.P384(), &k.p384}, {elliptic.P521(), &k.p521}} {
			if *c.to, err = ecdsa.GenerateKey(c.curve, rand.Reader); err != nil {
				panic(err)
			}
		}
		k.secretFile = writeFileOrPanic(dir, "secret.key", k.secret)
		k.rsaPubFile = writeFileOrPanic(dir, "rsa.pub", publicPEM(&k.rsa.PublicKey))
		k.p256File = writeFileOrPanic(dir, "p256.pub", publicPEM(&k.p256.PublicKey))
		k.p384File = writeFileOrPanic(dir, "p384.pub", publicPEM(&k.p384.PublicKey))
		k.p521File = writeFileOrPanic(dir, "p521.pub", publicPEM(&k.p521.PublicKey))
		testKeys = k
	})
	return testKeys
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testKeysDir != "" {
		os.RemoveAll(testKeysDir)
	}
	os.Exit(code)
}

func writeFileOrPanic(dir, name string, data []byte) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		panic(err)
	}
	return p
}

func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func publicPEM(pub any) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// sign makes a token with any algorithm, including those CreateToken
// never uses.
func sign(t testing.TB, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func verifier(t testing.TB, c TokenConfig) *Verifier {
	t.Helper()
	v, err := NewVerifier(c)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerifyAcceptsEveryAlgorithmOfItsKeyAndNothingElse(t *testing.T) {
	t.Parallel()
	k := loadTestKeys(t)
	rsaPub, err := os.ReadFile(k.rsaPubFile)
	if err != nil {
		t.Fatal(err)
	}
	sub := jwt.MapClaims{"sub": "alice"}
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, sub)
	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherP256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secret := TokenConfig{SecretKeyFile: k.secretFile}
	rsaCfg := TokenConfig{PublicKeyFile: k.rsaPubFile}
	p256 := TokenConfig{PublicKeyFile: k.p256File}
	tests := []struct {
		name  string
		cfg   TokenConfig
		token string
		want  string // the error's reason; "" for accepted
	}{
		{"HS256 with the secret", secret, sign(t, jwt.SigningMethodHS256, k.secret, sub), ""},
		{"HS384 with the secret", secret, sign(t, jwt.SigningMethodHS384, k.secret, sub), ""},
		{"HS512 with the secret", secret, sign(t, jwt.SigningMethodHS512, k.secret, sub), ""},
		{"RS256 with the public key", rsaCfg, sign(t, jwt.SigningMethodRS256, k.rsa, sub), ""},
		{"RS384 with the public key", rsaCfg, sign(t, jwt.SigningMethodRS384, k.rsa, sub), ""},
		{"RS512 with the public key", rsaCfg, sign(t, jwt.SigningMethodRS512, k.rsa, sub), ""},
		{"ES256 with a P-256 key", p256, sign(t, jwt.SigningMethodES256, k.p256, sub), ""},
		{"ES384 with a P-384 key", TokenConfig{PublicKeyFile: k.p384File}, sign(t, jwt.SigningMethodES384, k.p384, sub), ""},
		{"ES512 with a P-521 key", TokenConfig{PublicKeyFile: k.p521File}, sign(t, jwt.SigningMethodES512, k.p521, sub), ""},

		{"HS256 with another secret", secret, sign(t, jwt.SigningMethodHS256, GenerateSecretKey(), sub), "signature does not verify"},
		{"RS256 with another RSA key", rsaCfg, sign(t, jwt.SigningMethodRS256, otherRSA, sub), "signature does not verify"},
		{"ES256 with another P-256 key", p256, sign(t, jwt.SigningMethodES256, otherP256, sub), "signature does not verify"},
		{"HS256 keyed with the RSA public key (alg confusion)", rsaCfg, sign(t, jwt.SigningMethodHS256, rsaPub, sub), "algorithm HS256 is not accepted"},
		{"HS256 keyed with the EC public key (alg confusion)", p256, sign(t, jwt.SigningMethodHS256, publicPEM(&k.p256.PublicKey), sub), "algorithm HS256 is not accepted"},
		{"RS256 against a secret", secret, sign(t, jwt.SigningMethodRS256, k.rsa, sub), "algorithm RS256 is not accepted"},
		{"PS256 with the RSA key", rsaCfg, sign(t, jwt.SigningMethodPS256, k.rsa, sub), "algorithm PS256 is not accepted"},
		{"ES384 against a P-256 key", p256, sign(t, jwt.SigningMethodES384, k.p384, sub), "algorithm ES384 is not accepted"},
		{"none against a secret", secret, none, "algorithm none is not accepted"},
		{"none against an RSA key", rsaCfg, none, "algorithm none is not accepted"},
		{"none against an EC key", p256, none, "algorithm none is not accepted"},
		{"none with its signature stripped", secret, strings.TrimSuffix(none, "."), "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkVerify(t, verifier(t, tt.cfg), tt.token, "alice", tt.want)
		})
	}
}

// checkVerify verifies token and checks the role (wantErr "") or that the
// error wraps ErrInvalidToken, gives wantErr and never quotes the token.
func checkVerify(t *testing.T, v *Verifier, token, role, wantErr string) {
	t.Helper()
	p, err := v.Verify(token)
	if wantErr == "" {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		if p != (Principal{Role: role, Method: MethodToken}) {
			t.Fatalf("principal %+v, want role %q by token", p, role)
		}
		return
	}
	if err == nil {
		t.Fatalf("accepted as %+v; want %q", p, wantErr)
	}
	if !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("error %v does not wrap ErrInvalidToken", err)
	}
	if !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("error %q, want %q", err, wantErr)
	}
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 8 && strings.Contains(err.Error(), part) {
			t.Fatalf("error %q quotes the token", err)
		}
	}
}

func TestVerifyChecksTheClaims(t *testing.T) {
	t.Parallel()
	k := loadTestKeys(t)
	now := time.Now()
	plain := verifier(t, TokenConfig{SecretKeyFile: k.secretFile})
	strict := verifier(t, TokenConfig{SecretKeyFile: k.secretFile, Audience: "magnetar", Issuer: "https://issuer.example"})
	tok := func(claims jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, k.secret, claims) }
	good := jwt.MapClaims{"sub": "bob", "aud": "magnetar", "iss": "https://issuer.example"}
	with := func(kv ...any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range good {
			c[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	tests := []struct {
		name  string
		v     *Verifier
		token string
		want  string
	}{
		{"a token without exp never expires", plain, tok(jwt.MapClaims{"sub": "bob"}), ""},
		{"a token before its exp", plain, tok(jwt.MapClaims{"sub": "bob", "exp": now.Add(time.Hour).Unix()}), ""},
		{"an expired token", plain, tok(jwt.MapClaims{"sub": "bob", "exp": now.Add(-time.Hour).Unix()}), "expired"},
		{"a token expired within the clock skew", plain, tok(jwt.MapClaims{"sub": "bob", "exp": now.Add(-5 * time.Second).Unix()}), ""},
		{"a token not valid yet", plain, tok(jwt.MapClaims{"sub": "bob", "nbf": now.Add(time.Hour).Unix()}), "not valid yet"},
		{"a token valid within the clock skew", plain, tok(jwt.MapClaims{"sub": "bob", "nbf": now.Add(5 * time.Second).Unix()}), ""},
		{"exp that is not a number", plain, tok(jwt.MapClaims{"sub": "bob", "exp": "tomorrow"}), "malformed"},
		{"a missing sub", plain, tok(jwt.MapClaims{"exp": now.Add(time.Hour).Unix()}), "no subject (sub) claim"},
		{"an empty sub", plain, tok(jwt.MapClaims{"sub": ""}), "no subject (sub) claim"},
		{"a sub that is not a string", plain, tok(jwt.MapClaims{"sub": 42}), "malformed"},
		{"aud and iss ignored when not configured", plain, tok(with("aud", "elsewhere", "iss", "someone")), ""},
		{"the expected aud and iss", strict, tok(good), ""},
		{"aud as a list holding the expected one", strict, tok(with("aud", []string{"other", "magnetar"})), ""},
		{"a wrong aud", strict, tok(with("aud", "elsewhere")), "audience (aud)"},
		{"a missing aud", strict, tok(with("aud", nil)), "required claim"},
		{"a wrong iss", strict, tok(with("iss", "https://evil.example")), "issuer (iss)"},
		{"a missing iss", strict, tok(with("iss", nil)), "required claim"},
		{"expired with the right aud and iss", strict, tok(with("exp", now.Add(-time.Hour).Unix())), "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkVerify(t, tt.v, tt.token, "bob", tt.want)
		})
	}
}

func TestVerifyRefusesGarbageAndOversizedTokensBeforeDecoding(t *testing.T) {
	t.Parallel()
	k := loadTestKeys(t)
	v := verifier(t, TokenConfig{SecretKeyFile: k.secretFile, MaxTokenBytes: 1024})
	bigSub := strings.Repeat("x", 2000)
	tests := []struct {
		name, token, want string
	}{
		{"empty", "", "empty"},
		{"one word", "garbage", "malformed"},
		{"three dots", "...", "malformed"},
		{"three words", "a.b.c", "malformed"},
		{"a bearer prefix left on", "Bearer " + sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "x"}), "malformed"},
		{"a header that is not JSON", "bm90IGpzb24.e30.c2ln", "malformed"},
		{"a valid token longer than the limit", sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": bigSub}), "longer than 1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkVerify(t, v, tt.token, "", tt.want)
		})
	}
	// The default limit is DefaultMaxTokenBytes.
	d := verifier(t, TokenConfig{SecretKeyFile: k.secretFile})
	checkVerify(t, d, sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": bigSub}), bigSub, "")
	huge := sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": strings.Repeat("y", DefaultMaxTokenBytes)})
	checkVerify(t, d, huge, "", "longer than 16384 bytes")
}

func TestAVerifierWithoutAKeyRefusesEveryToken(t *testing.T) {
	t.Parallel()
	k := loadTestKeys(t)
	v := verifier(t, TokenConfig{})
	checkVerify(t, v, sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "a"}), "", "no token key is configured")
}

func TestCreateTokenRoundTripsThroughVerify(t *testing.T) {
	t.Parallel()
	k := loadTestKeys(t)
	tests := []struct {
		name string
		key  any
		file TokenConfig
		alg  string
	}{
		{"secret", k.secret, TokenConfig{SecretKeyFile: k.secretFile}, "HS256"},
		{"RSA", k.rsa, TokenConfig{PublicKeyFile: k.rsaPubFile}, "RS256"},
		{"P-256", k.p256, TokenConfig{PublicKeyFile: k.p256File}, "ES256"},
		{"P-384", k.p384, TokenConfig{PublicKeyFile: k.p384File}, "ES384"},
		{"P-521", k.p521, TokenConfig{PublicKeyFile: k.p521File}, "ES512"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok, err := CreateToken(tt.key, "svc-orders", time.Hour, map[string]any{"aud": "magnetar"})
			if err != nil {
				t.Fatal(err)
			}
			header, claims, err := Inspect(tok)
			if err != nil {
				t.Fatal(err)
			}
			if header["alg"] != tt.alg || claims["sub"] != "svc-orders" || claims["aud"] != "magnetar" {
				t.Fatalf("header %v claims %v; want alg %s, sub and aud", header, claims, tt.alg)
			}
			exp, ok := claims["exp"].(float64)
			if !ok || exp < float64(time.Now().Add(59*time.Minute).Unix()) || exp > float64(time.Now().Add(61*time.Minute).Unix()) {
				t.Fatalf("exp %v, want an hour from now", claims["exp"])
			}
			tt.file.Audience = "magnetar"
			checkVerify(t, verifier(t, tt.file), tok, "svc-orders", "")
		})
	}
}

func TestCreateTokenRefusesBadArguments(t *testing.T) {
	t.Parallel()
	k := loadTestKeys(t)
	tests := []struct {
		name    string
		key     any
		sub     string
		exp     time.Duration
		extra   map[string]any
		wantErr string
	}{
		{"no subject", k.secret, "", 0, nil, "needs a subject"},
		{"a negative expiry", k.secret, "a", -time.Second, nil, "negative"},
		{"a short secret", []byte("short"), "a", 0, nil, "want at least 32"},
		{"an unsupported key", "a string", "a", 0, nil, "cannot sign with a string"},
		{"a public key", &k.rsa.PublicKey, "a", 0, nil, "cannot sign with a *rsa.PublicKey"},
		{"sub in extra", k.secret, "a", 0, map[string]any{"sub": "b"}, "may not set sub"},
		{"exp twice", k.secret, "a", time.Hour, map[string]any{"exp": 1}, "may not set exp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := CreateToken(tt.key, tt.sub, tt.exp, tt.extra)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestVerifyIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	k := loadTestKeys(t)
	v := verifier(t, TokenConfig{PublicKeyFile: k.p256File})
	good, err := CreateToken(k.p256, "c", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := CreateToken(k.p256, "c", 0, map[string]any{"exp": time.Now().Add(-time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			for range 50 {
				tok, wantOK := good, true
				if i%2 == 1 {
					tok, wantOK = bad, false
				}
				if _, err := v.Verify(tok); (err == nil) != wantOK {
					errs <- fmt.Errorf("want accepted %v, got error %v", wantOK, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("goroutine saw %v", err)
	}
}

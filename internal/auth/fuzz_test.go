package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify feeds tokens to verifiers of every key type: none may panic;
// an accepted token names a role; a refused one gets a short error that
// wraps ErrInvalidToken and never quotes the input.
func FuzzVerify(f *testing.F) {
	k := loadTestKeys(f)
	verifiers := []*Verifier{
		verifier(f, TokenConfig{SecretKeyFile: k.secretFile}),
		verifier(f, TokenConfig{PublicKeyFile: k.rsaPubFile, Audience: "magnetar"}),
		verifier(f, TokenConfig{PublicKeyFile: k.p256File, Issuer: "iss"}),
	}
	seed := func(m jwt.SigningMethod, key any, claims jwt.MapClaims) {
		f.Add(sign(f, m, key, claims))
	}
	seed(jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "alice"})
	seed(jwt.SigningMethodHS512, k.secret, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Hour).Unix()})
	seed(jwt.SigningMethodRS256, k.rsa, jwt.MapClaims{"sub": "bob", "aud": []string{"x", "magnetar"}})
	seed(jwt.SigningMethodES256, k.p256, jwt.MapClaims{"sub": "carol", "iss": "iss", "nbf": time.Now().Unix()})
	seed(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"sub": "mallory"})
	for _, s := range []string{"", ".", "..", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.", "eyJhbGciOiJub25lIn0.eyJzdWIiOjF9."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		for _, v := range verifiers {
			p, err := v.Verify(token)
			if err == nil {
				if p.Role == "" || p.Method != MethodToken {
					t.Fatalf("accepted without a role: %+v", p)
				}
				continue
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v does not wrap ErrInvalidToken", err)
			}
			if len(err.Error()) > 120 {
				t.Fatalf("error of %d bytes: %q", len(err.Error()), err)
			}
			if len(token) >= 12 && strings.Contains(err.Error(), token) {
				t.Fatalf("error %q quotes the token", err)
			}
		}
	})
}

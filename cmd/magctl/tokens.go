package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/magnetar-mq/magnetar/internal/auth"
)

// The tokens commands, in the style of `pulsar tokens`: keys and JWTs for
// token authentication. They work on files and talk to no broker.

// maxTokenInput bounds a token read from standard input.
const maxTokenInput = 1 << 20

func init() {
	var output, algorithm, privateFile, publicFile, secretFile, subject, expiry, audience, issuer string
	var asBase64 bool
	keyFlags := func(fs *flag.FlagSet, verifying bool) {
		fs.StringVar(&secretFile, "secret-key-file", "", "secret key file (HS256)")
		if verifying {
			fs.StringVar(&publicFile, "public-key-file", "", "public key file (RS256, ES256)")
		} else {
			fs.StringVar(&privateFile, "private-key-file", "", "private key file (RS256, ES256)")
		}
		fs.StringVar(&audience, "audience", "", "audience (aud claim)")
		fs.StringVar(&issuer, "issuer", "", "issuer (iss claim)")
	}
	commands = append(commands, []*command{
		{
			name: "tokens create-secret-key", args: "", nargs: 0, local: true,
			help: "Creates a secret key for HS256 tokens: 32 random bytes. Brokers verify tokens\n" +
				"with it (--auth.token-secret-key-file) and 'magctl tokens create' signs with it:\n" +
				"keep it secret. It is written raw, or with --base64 as 'base64:' and the key in\n" +
				"base64, which brokers read as well. An existing --output file is not overwritten.",
			examples: "  magctl tokens create-secret-key --output my-secret.key\n  magctl tokens create-secret-key --base64\n",
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&output, "output", "", "file to write the key to, readable by its owner only (default: standard output)")
				fs.BoolVar(&asBase64, "base64", false, "write 'base64:' and the key in base64 rather than raw bytes")
			},
			run: func(_ context.Context, e *env, _ []string) error {
				key := auth.GenerateSecretKey()
				if asBase64 {
					key = auth.EncodeSecretKey(key)
				}
				if output == "" {
					_, err := e.stdout.Write(key)
					return err
				}
				if err := writeNewFile(output, key, 0o600); err != nil {
					return err
				}
				fmt.Fprintf(e.stderr, "wrote a secret key to %s\n", output)
				return nil
			},
		},
		{
			name: "tokens create-key-pair", args: "", nargs: 0, local: true,
			help: "Creates a key pair for RS256 or ES256 tokens, as PEM. Brokers verify tokens with the\n" +
				"public key (--auth.token-public-key-file); 'magctl tokens create' signs with the\n" +
				"private key, which stays with whoever issues tokens. Existing files are not overwritten.",
			examples: "  magctl tokens create-key-pair --algorithm ES256 --private-key-file my-private.pem --public-key-file my-public.pem\n",
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&algorithm, "algorithm", "RS256", "RS256 (RSA 2048) or ES256 (ECDSA P-256)")
				fs.StringVar(&privateFile, "private-key-file", "", "file to write the private key to (required)")
				fs.StringVar(&publicFile, "public-key-file", "", "file to write the public key to (required)")
			},
			run: func(_ context.Context, e *env, _ []string) error {
				if privateFile == "" || publicFile == "" {
					return errors.New("--private-key-file and --public-key-file are required")
				}
				priv, pub, err := auth.GenerateKeyPair(strings.ToUpper(algorithm))
				if err != nil {
					return err
				}
				if err := writeNewFile(privateFile, priv, 0o600); err != nil {
					return err
				}
				if err := writeNewFile(publicFile, pub, 0o644); err != nil {
					os.Remove(privateFile) // half a pair is of no use
					return err
				}
				fmt.Fprintf(e.stderr, "wrote the private key to %s and the public key to %s\n", privateFile, publicFile)
				return nil
			},
		},
		{
			name: "tokens create", args: "", nargs: 0, local: true,
			help: "Creates a token for a role (its subject), signed with a secret key or a private key\n" +
				"file, and prints it. Without --expiry-time it never expires, as in Pulsar.",
			examples: "  magctl tokens create --secret-key-file my-secret.key --subject alice\n" +
				"  magctl tokens create --private-key-file my-private.pem --subject svc-orders --expiry-time 30d\n" +
				"  magctl tokens create --secret-key-file my-secret.key --subject bob --audience magnetar > bob.jwt\n",
			flags: func(fs *flag.FlagSet) {
				keyFlags(fs, false)
				fs.StringVar(&subject, "subject", "", "the role the token is for (sub claim; required)")
				fs.StringVar(&expiry, "expiry-time", "", "how long the token is valid, e.g. 1h, 30d, 1y (default: forever)")
			},
			run: func(_ context.Context, e *env, _ []string) error {
				if subject == "" {
					return errors.New("--subject is required")
				}
				key, err := loadSigningKey(secretFile, privateFile)
				if err != nil {
					return err
				}
				expiresIn, err := parseExpiry(expiry)
				if err != nil {
					return err
				}
				extra := map[string]any{}
				if audience != "" {
					extra["aud"] = audience
				}
				if issuer != "" {
					extra["iss"] = issuer
				}
				tok, err := auth.CreateToken(key, subject, expiresIn, extra)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(e.stdout, tok)
				return err
			},
		},
		{
			name: "tokens show", args: "TOKEN", nargs: 1, local: true,
			help: "Prints a token's header and claims as JSON, without verifying it: anyone can\n" +
				"write any claims. TOKEN - reads the token from standard input.",
			examples: "  magctl tokens show eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.kVD8...\n  magctl tokens show - < alice.jwt\n",
			run: func(_ context.Context, e *env, args []string) error {
				tok, err := tokenArg(e, args[0])
				if err != nil {
					return err
				}
				header, claims, err := auth.Inspect(tok)
				if err != nil {
					return err
				}
				return writeJSON(e.stdout, map[string]any{"header": header, "claims": claims})
			},
		},
		{
			name: "tokens validate", args: "TOKEN", nargs: 1, local: true,
			help: "Verifies a token as a broker would, with a secret key or a public key file and,\n" +
				"when given, the audience and issuer it must name. Prints the token's role, or why\n" +
				"it is not valid (and exits 1). TOKEN - reads the token from standard input.",
			examples: "  magctl tokens validate \"$(cat alice.jwt)\" --secret-key-file my-secret.key\n" +
				"  magctl tokens validate - --public-key-file my-public.pem --audience magnetar < bob.jwt\n",
			flags: func(fs *flag.FlagSet) { keyFlags(fs, true) },
			run: func(_ context.Context, e *env, args []string) error {
				if (secretFile == "") == (publicFile == "") {
					return errors.New("set one of --secret-key-file and --public-key-file")
				}
				tok, err := tokenArg(e, args[0])
				if err != nil {
					return err
				}
				v, err := auth.NewVerifier(auth.TokenConfig{SecretKeyFile: secretFile, PublicKeyFile: publicFile, Audience: audience, Issuer: issuer})
				if err != nil {
					return err
				}
				p, err := v.Verify(tok)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(e.stdout, p.Role)
				return err
			},
		},
	}...)
}

// loadSigningKey loads the one key file given, checking it holds the kind
// of key its flag names.
func loadSigningKey(secretFile, privateFile string) (any, error) {
	if (secretFile == "") == (privateFile == "") {
		return nil, errors.New("set one of --secret-key-file and --private-key-file")
	}
	path := secretFile + privateFile
	key, err := auth.LoadSigningKey(path)
	if err != nil {
		return nil, err
	}
	if _, secret := key.([]byte); secret != (secretFile != "") {
		if secret {
			return nil, fmt.Errorf("--private-key-file %s holds no PEM or DER private key; is it a secret key (--secret-key-file)?", path)
		}
		return nil, fmt.Errorf("--secret-key-file %s holds a private key: use --private-key-file", path)
	}
	return key, nil
}

// parseExpiry parses --expiry-time: the units of parseDurationMs plus y
// (365 days); "" or a word for forever (infinite, ...) is 0, no expiry.
func parseExpiry(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if n, ok := strings.CutSuffix(strings.ToLower(strings.TrimSpace(s)), "y"); ok {
		if v, err := strconv.ParseFloat(n, 64); err == nil && v > 0 && v <= 1000 {
			return time.Duration(v * float64(365*24*time.Hour)), nil
		}
	}
	ms, err := parseDurationMs(s)
	if err != nil {
		return 0, fmt.Errorf("--expiry-time: %w", err)
	}
	if ms < 0 {
		return 0, nil
	}
	if ms == 0 {
		return 0, errors.New("--expiry-time 0 would make a token that has expired: leave it out for one that never does")
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// tokenArg is the TOKEN argument, read from standard input for "-", with
// surrounding white space removed.
func tokenArg(e *env, arg string) (string, error) {
	if arg != "-" {
		return strings.TrimSpace(arg), nil
	}
	data, err := io.ReadAll(io.LimitReader(e.stdin, maxTokenInput+1))
	if err != nil {
		return "", fmt.Errorf("reading the token from standard input: %w", err)
	}
	if len(data) > maxTokenInput {
		return "", fmt.Errorf("standard input holds more than %d bytes: not a token", maxTokenInput)
	}
	return strings.TrimSpace(string(data)), nil
}

// writeNewFile writes data to a file that must not exist yet: a key file
// overwritten by mistake would invalidate every token signed with it.
func writeNewFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

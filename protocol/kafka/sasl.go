package kafka

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"os"
	"slices"
	"strings"
)

// SASL: PLAIN (RFC 4616) and SCRAM-SHA-256/512 (RFC 5802, 7677), server
// side. Users are configured as name:password pairs; only SCRAM
// credentials derived from them (salt, iterations, StoredKey, ServerKey)
// are kept, and PLAIN logins are checked against the SHA-256 one, so no
// password stays in memory after startup.

// Mechanism names, as Kafka clients send them.
const (
	mechPlain       = "PLAIN"
	mechSCRAMSHA256 = "SCRAM-SHA-256"
	mechSCRAMSHA512 = "SCRAM-SHA-512"
)

// scramIterations is the PBKDF2 iteration count of derived credentials
// (Kafka's minimum, and RFC 7677's recommendation).
const scramIterations = 4096

// maxSASLToken caps one SASL message from a client.
const maxSASLToken = 64 << 10

// errAuthFailed is the one answer to every failed login, whatever failed,
// so a client cannot tell unknown users from wrong passwords.
var errAuthFailed = errors.New("authentication failed: invalid credentials")

type scramHash struct {
	name string
	new  func() hash.Hash
	size int
}

var scramHashes = map[string]scramHash{
	mechSCRAMSHA256: {mechSCRAMSHA256, sha256.New, sha256.Size},
	mechSCRAMSHA512: {mechSCRAMSHA512, sha512.New, sha512.Size},
}

type scramCredential struct {
	salt                 []byte
	iterations           int
	storedKey, serverKey []byte
}

func newSCRAMCredential(h scramHash, password string, salt []byte, iterations int) scramCredential {
	salted, _ := pbkdf2.Key(h.new, password, salt, iterations, h.size) // errors only on FIPS-140 limits
	clientKey := hmacOf(h, salted, []byte("Client Key"))
	stored := h.new()
	stored.Write(clientKey)
	return scramCredential{salt: salt, iterations: iterations, storedKey: stored.Sum(nil),
		serverKey: hmacOf(h, salted, []byte("Server Key"))}
}

func hmacOf(h scramHash, key, msg []byte) []byte {
	m := hmac.New(h.new, key)
	m.Write(msg)
	return m.Sum(nil)
}

// users holds the credentials of every configured user, per SCRAM hash.
type users struct {
	creds map[string]map[string]scramCredential // user -> mechanism -> credential
	dummy map[string]scramCredential            // checked for unknown users
	// saltKey derives an unknown user's salt from its name: a salt of its
	// own, the same at every login, as a known user's is (one salt for
	// every unknown name would tell them from known ones).
	saltKey []byte
}

// newUsers derives the credentials of name:password pairs.
func newUsers(pairs map[string]string) *users {
	u := &users{creds: make(map[string]map[string]scramCredential, len(pairs)), dummy: make(map[string]scramCredential),
		saltKey: randomBytes(32)}
	for mech, h := range scramHashes {
		u.dummy[mech] = newSCRAMCredential(h, randomString(), randomBytes(16), scramIterations)
	}
	for name, password := range pairs {
		u.creds[name] = make(map[string]scramCredential)
		for mech, h := range scramHashes {
			u.creds[name][mech] = newSCRAMCredential(h, password, randomBytes(16), scramIterations)
		}
	}
	return u
}

// credential returns the user's credential for a SCRAM mechanism, or a
// dummy one (that no proof matches) and false.
func (u *users) credential(user, mech string) (scramCredential, bool) {
	if c, ok := u.creds[user][mech]; ok {
		return c, true
	}
	d := u.dummy[mech]
	m := hmac.New(sha256.New, u.saltKey)
	m.Write([]byte(mech + "\x00" + user))
	d.salt = m.Sum(nil)[:len(d.salt)]
	return d, false
}

// checkPassword verifies a PLAIN login, doing the same work for unknown
// users as for known ones.
func (u *users) checkPassword(user, password string) bool {
	c, known := u.credential(user, mechSCRAMSHA256)
	got := newSCRAMCredential(scramHashes[mechSCRAMSHA256], password, c.salt, c.iterations)
	return subtle.ConstantTimeCompare(got.storedKey, c.storedKey) == 1 && known
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return b
}

func randomString() string { return base64.RawStdEncoding.EncodeToString(randomBytes(18)) }

// parseUsers reads name:password pairs, comma-separated (the flag) or one
// per line (the file, where '#' starts a comment).
func parseUsers(list, file string) (map[string]string, error) {
	pairs := make(map[string]string)
	add := func(entry, where string) error {
		entry = strings.TrimSpace(entry)
		if entry == "" || strings.HasPrefix(entry, "#") {
			return nil
		}
		name, password, ok := strings.Cut(entry, ":")
		if !ok || name == "" || password == "" {
			return fmt.Errorf("kafka: sasl users: %s: want name:password", where)
		}
		if _, dup := pairs[name]; dup {
			return fmt.Errorf("kafka: sasl users: user %q given twice", name)
		}
		pairs[name] = password
		return nil
	}
	if list != "" {
		for i, e := range strings.Split(list, ",") {
			if err := add(e, fmt.Sprintf("entry %d of sasl-users", i+1)); err != nil {
				return nil, err
			}
		}
	}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("kafka: sasl users file: %w", err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for line := 1; sc.Scan(); line++ {
			if err := add(sc.Text(), fmt.Sprintf("%s:%d", file, line)); err != nil {
				return nil, err
			}
		}
	}
	return pairs, nil
}

// saslSession is one login in progress: each client message gets an
// answer, until done.
type saslSession interface {
	// step consumes a client message and returns the server's answer;
	// done is true once the client is authenticated. Any error fails the
	// login.
	step(msg []byte) (answer []byte, done bool, err error)
	// user is the authenticated user, once done.
	user() string
}

func newSASLSession(mech string, u *users) saslSession {
	if mech == mechPlain {
		return &plainSession{users: u}
	}
	return &scramSession{users: u, h: scramHashes[mech], mech: mech}
}

type plainSession struct {
	users *users
	name  string
}

// step checks "authzid NUL authcid NUL password"; the authorization
// identity, if given, must be the user's own.
func (s *plainSession) step(msg []byte) ([]byte, bool, error) {
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return nil, false, fmt.Errorf("%w: malformed PLAIN message", errAuthFailed)
	}
	authz, name, password := string(parts[0]), string(parts[1]), string(parts[2])
	if authz != "" && authz != name {
		return nil, false, fmt.Errorf("%w: authorization identity differs from the user", errAuthFailed)
	}
	if name == "" || !s.users.checkPassword(name, password) {
		return nil, false, errAuthFailed
	}
	s.name = name
	return nil, true, nil
}

func (s *plainSession) user() string { return s.name }

type scramSession struct {
	users *users
	h     scramHash
	mech  string

	// After the client's first message:
	name            string
	known           bool
	cred            scramCredential
	gs2Header       string
	clientFirstBare string
	serverFirst     string
	nonce           string
	done            bool
}

func (s *scramSession) user() string { return s.name }

func (s *scramSession) step(msg []byte) ([]byte, bool, error) {
	if s.done {
		return nil, false, fmt.Errorf("%w: unexpected message after the exchange", errAuthFailed)
	}
	if s.serverFirst == "" {
		return s.clientFirst(string(msg))
	}
	return s.clientFinal(string(msg))
}

// clientFirst parses "gs2-header client-first-bare", e.g.
// "n,,n=user,r=nonce", and answers "r=nonce+ours,s=salt,i=iterations".
func (s *scramSession) clientFirst(msg string) ([]byte, bool, error) {
	// gs2-header: a channel-binding flag, an optional authzid, each
	// followed by a comma. Channel binding ("p=") is not supported.
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok || (flag != "n" && flag != "y") {
		return nil, false, fmt.Errorf("%w: SCRAM: unsupported channel binding %q", errAuthFailed, clip(flag, maxQuoted))
	}
	authz, bare, ok := strings.Cut(rest, ",")
	if !ok || (authz != "" && !strings.HasPrefix(authz, "a=")) {
		return nil, false, fmt.Errorf("%w: SCRAM: malformed client-first message", errAuthFailed)
	}
	attrs, err := scramAttributes(bare)
	if err != nil {
		return nil, false, err
	}
	if len(attrs) < 2 || attrs[0].key != 'n' || attrs[1].key != 'r' || attrs[1].value == "" {
		return nil, false, fmt.Errorf("%w: SCRAM: client-first message wants n= and r=", errAuthFailed)
	}
	for _, a := range attrs[2:] {
		if a.key == 'm' {
			return nil, false, fmt.Errorf("%w: SCRAM: mandatory extension not supported", errAuthFailed)
		}
	}
	name, err := scramName(attrs[0].value)
	if err != nil {
		return nil, false, err
	}
	if authz != "" && authz[2:] != attrs[0].value {
		return nil, false, fmt.Errorf("%w: authorization identity differs from the user", errAuthFailed)
	}
	if strings.Contains(bare, "tokenauth=true") {
		return nil, false, fmt.Errorf("%w: SCRAM: delegation tokens are not supported", errAuthFailed)
	}
	s.name = name
	s.cred, s.known = s.users.credential(name, s.mech)
	s.gs2Header = flag + "," + authz + ","
	s.clientFirstBare = bare
	s.nonce = attrs[1].value + randomString()
	s.serverFirst = fmt.Sprintf("r=%s,s=%s,i=%d", s.nonce, base64.StdEncoding.EncodeToString(s.cred.salt), s.cred.iterations)
	return []byte(s.serverFirst), false, nil
}

// clientFinal checks "c=<gs2 header>,r=<nonce>,p=<proof>" and answers
// "v=<server signature>".
func (s *scramSession) clientFinal(msg string) ([]byte, bool, error) {
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, false, fmt.Errorf("%w: SCRAM: client-final message has no proof", errAuthFailed)
	}
	withoutProof := msg[:i]
	proof, err := base64.StdEncoding.DecodeString(msg[i+3:])
	if err != nil || len(proof) != s.h.size {
		return nil, false, fmt.Errorf("%w: SCRAM: malformed proof", errAuthFailed)
	}
	attrs, err := scramAttributes(withoutProof)
	if err != nil {
		return nil, false, err
	}
	if len(attrs) < 2 || attrs[0].key != 'c' || attrs[1].key != 'r' {
		return nil, false, fmt.Errorf("%w: SCRAM: client-final message wants c= and r=", errAuthFailed)
	}
	// The nonce must end with ours: librdkafka sends its own nonce again
	// in front of the combined one, and Kafka accepts that.
	if attrs[0].value != base64.StdEncoding.EncodeToString([]byte(s.gs2Header)) || !strings.HasSuffix(attrs[1].value, s.nonce) {
		return nil, false, fmt.Errorf("%w: SCRAM: channel binding or nonce mismatch", errAuthFailed)
	}
	authMessage := []byte(s.clientFirstBare + "," + s.serverFirst + "," + withoutProof)
	signature := hmacOf(s.h, s.cred.storedKey, authMessage)
	clientKey := make([]byte, len(proof))
	subtle.XORBytes(clientKey, proof, signature)
	stored := s.h.new()
	stored.Write(clientKey)
	if subtle.ConstantTimeCompare(stored.Sum(nil), s.cred.storedKey) != 1 || !s.known {
		return nil, false, errAuthFailed
	}
	s.done = true
	verifier := hmacOf(s.h, s.cred.serverKey, authMessage)
	return []byte("v=" + base64.StdEncoding.EncodeToString(verifier)), true, nil
}

type scramAttribute struct {
	key   byte
	value string
}

// scramAttributes splits "k=v,k=v,..." (each key one letter).
func scramAttributes(s string) ([]scramAttribute, error) {
	var out []scramAttribute
	for part := range strings.SplitSeq(s, ",") {
		if len(part) < 2 || part[1] != '=' {
			return nil, fmt.Errorf("%w: SCRAM: malformed attribute %q", errAuthFailed, clip(part, maxQuoted))
		}
		out = append(out, scramAttribute{key: part[0], value: part[2:]})
	}
	return out, nil
}

// scramName decodes a SCRAM saslname: "=2C" is ',' and "=3D" is '='; any
// other '=' is malformed.
func scramName(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", fmt.Errorf("%w: SCRAM: malformed user name", errAuthFailed)
		}
		i += 2
	}
	return b.String(), nil
}

// enabledMechanisms validates a comma-separated mechanism list.
func enabledMechanisms(list string) ([]string, error) {
	var out []string
	for m := range strings.SplitSeq(list, ",") {
		m = strings.ToUpper(strings.TrimSpace(m))
		if m == "" {
			continue
		}
		if m != mechPlain && m != mechOAuthBearer && scramHashes[m].name == "" {
			return nil, fmt.Errorf("kafka: sasl mechanism %q: want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", m)
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, nil
}

package auth

import (
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
	"io"
	"strconv"
	"strings"
)

// SCRAM (RFC 5802, RFC 7677) as Kafka uses it: no channel binding, the
// user name in the client-first message, credentials stored as salt,
// iteration count, StoredKey and ServerKey (never the password).

// ScramMechanism is one SCRAM hash: SCRAM-SHA-256 or SCRAM-SHA-512.
type ScramMechanism struct {
	// Name is the SASL mechanism name, "SCRAM-SHA-256" or "SCRAM-SHA-512".
	Name string
	// KafkaType is the mechanism's number in Kafka's
	// Describe/AlterUserScramCredentials (1 = SHA-256, 2 = SHA-512).
	KafkaType int8
	newHash   func() hash.Hash
}

// The two SCRAM mechanisms Kafka defines.
var (
	ScramSHA256 = &ScramMechanism{Name: "SCRAM-SHA-256", KafkaType: 1, newHash: sha256.New}
	ScramSHA512 = &ScramMechanism{Name: "SCRAM-SHA-512", KafkaType: 2, newHash: sha512.New}
)

// ScramMechanisms lists the supported SCRAM mechanisms.
var ScramMechanisms = []*ScramMechanism{ScramSHA256, ScramSHA512}

// ScramMechanismNamed returns the mechanism called name, nil if none.
func ScramMechanismNamed(name string) *ScramMechanism {
	for _, m := range ScramMechanisms {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// ScramMechanismOfType returns the mechanism with Kafka's number t, nil
// if none.
func ScramMechanismOfType(t int8) *ScramMechanism {
	for _, m := range ScramMechanisms {
		if m.KafkaType == t {
			return m
		}
	}
	return nil
}

// Iteration counts: Kafka's minimum (and Sluice's default) and Kafka's
// maximum.
const (
	ScramDefaultIterations = 4096
	ScramMinIterations     = 4096
	ScramMaxIterations     = 16384
)

// scramSaltLen is the size of a generated salt.
const scramSaltLen = 32

// ScramCredential is what the server stores to check a SCRAM login: it
// cannot be turned back into the password, and it does not let one log
// in without knowing the password (StoredKey is a hash of ClientKey).
type ScramCredential struct {
	Mechanism  string `json:"mechanism"`
	Salt       []byte `json:"salt"`
	Iterations int    `json:"iterations"`
	StoredKey  []byte `json:"stored_key"`
	ServerKey  []byte `json:"server_key"`
}

// NewScramCredential derives a credential for password with a fresh
// random salt.
func NewScramCredential(m *ScramMechanism, password string, iterations int) (ScramCredential, error) {
	salt := make([]byte, scramSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return ScramCredential{}, fmt.Errorf("auth: reading salt: %w", err)
	}
	return ScramCredentialWithSalt(m, password, salt, iterations)
}

// NewScramCredentials derives a credential of every mechanism for
// password, each with its own salt and the default iteration count.
func NewScramCredentials(password string) ([]ScramCredential, error) {
	var out []ScramCredential
	for _, m := range ScramMechanisms {
		c, err := NewScramCredential(m, password, ScramDefaultIterations)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// ScramCredentialWithSalt derives a credential from password and salt:
// SaltedPassword = PBKDF2(HMAC-H, password, salt, iterations).
func ScramCredentialWithSalt(m *ScramMechanism, password string, salt []byte, iterations int) (ScramCredential, error) {
	if iterations < 1 {
		return ScramCredential{}, errors.New("auth: SCRAM iterations must be positive")
	}
	h := m.newHash()
	salted, err := pbkdf2.Key(m.newHash, password, salt, iterations, h.Size())
	if err != nil {
		return ScramCredential{}, fmt.Errorf("auth: %w", err)
	}
	return ScramCredentialFromSalted(m, salted, salt, iterations), nil
}

// ScramCredentialFromSalted builds a credential from an already salted
// password (what Kafka's AlterUserScramCredentials carries).
func ScramCredentialFromSalted(m *ScramMechanism, salted, salt []byte, iterations int) ScramCredential {
	clientKey := m.hmac(salted, []byte("Client Key"))
	storedKey := m.hash(clientKey)
	serverKey := m.hmac(salted, []byte("Server Key"))
	return ScramCredential{
		Mechanism: m.Name, Salt: bytes.Clone(salt), Iterations: iterations,
		StoredKey: storedKey, ServerKey: serverKey,
	}
}

func (m *ScramMechanism) hmac(key, msg []byte) []byte {
	mac := hmac.New(m.newHash, key)
	mac.Write(msg)
	return mac.Sum(nil)
}

func (m *ScramMechanism) hash(b []byte) []byte {
	h := m.newHash()
	h.Write(b)
	return h.Sum(nil)
}

// ErrScramMalformed is returned for a client message that does not
// follow RFC 5802's grammar or Kafka's use of it.
var ErrScramMalformed = errors.New("auth: malformed SCRAM message")

// ErrScramFailed is returned when the client's proof is wrong or the
// user has no credential of the mechanism: the login fails.
var ErrScramFailed = errors.New("auth: SCRAM authentication failed")

// ClientFirst is a parsed client-first-message.
type ClientFirst struct {
	// GS2Header is the header as sent ("n,," or "y,,", with an authzid
	// "n,a=user,"); the client-final message echoes it base64-encoded.
	GS2Header string
	// Authzid is the authorization identity, "" if none.
	Authzid string
	// User is the user name, unescaped (=2C is ",", =3D is "=").
	User string
	// Nonce is the client's nonce.
	Nonce string
	// Bare is client-first-message-bare, part of the AuthMessage.
	Bare string
	// Extensions are the attribute=value pairs after the nonce (Kafka's
	// KIP-84 extensions, such as tokenauth=true).
	Extensions map[string]string
}

// ParseClientFirst parses a client-first-message. Channel binding ("p=")
// is refused: Kafka offers none. A mandatory extension ("m=") is refused,
// as RFC 5802 says.
func ParseClientFirst(msg []byte) (ClientFirst, error) {
	var cf ClientFirst
	s := string(msg)
	bad := func(why string) (ClientFirst, error) {
		return ClientFirst{}, fmt.Errorf("%w: client-first: %s", ErrScramMalformed, why)
	}
	// gs2-header = gs2-cbind-flag "," [authzid] ","
	flag, rest, ok := strings.Cut(s, ",")
	if !ok {
		return bad("no GS2 header")
	}
	switch {
	case flag == "n" || flag == "y":
	case strings.HasPrefix(flag, "p="):
		return bad("channel binding is not supported")
	default:
		return bad("bad channel binding flag")
	}
	authz, rest, ok := strings.Cut(rest, ",")
	if !ok {
		return bad("GS2 header not terminated")
	}
	if authz != "" {
		v, ok := strings.CutPrefix(authz, "a=")
		if !ok {
			return bad("bad authzid")
		}
		name, err := unescapeSaslName(v)
		if err != nil || name == "" {
			return bad("bad authzid")
		}
		cf.Authzid = name
	}
	cf.GS2Header = s[:len(s)-len(rest)]
	cf.Bare = rest
	attrs := strings.Split(rest, ",")
	if len(attrs) < 2 {
		return bad("want user and nonce")
	}
	if strings.HasPrefix(attrs[0], "m=") {
		return bad("mandatory extensions are not supported")
	}
	u, ok := strings.CutPrefix(attrs[0], "n=")
	if !ok {
		return bad("no user name")
	}
	name, err := unescapeSaslName(u)
	if err != nil || name == "" {
		return bad("bad user name")
	}
	cf.User = name
	n, ok := strings.CutPrefix(attrs[1], "r=")
	if !ok || !validNonce(n) {
		return bad("bad nonce")
	}
	cf.Nonce = n
	for _, a := range attrs[2:] {
		k, v, ok := strings.Cut(a, "=")
		if !ok || !validExtKey(k) {
			return bad("bad extension")
		}
		if cf.Extensions == nil {
			cf.Extensions = map[string]string{}
		}
		cf.Extensions[k] = v
	}
	return cf, nil
}

// ClientFinal is a parsed client-final-message.
type ClientFinal struct {
	// ChannelBinding is the decoded c= attribute (the GS2 header again).
	ChannelBinding string
	// Nonce is the combined nonce.
	Nonce string
	// Proof is the decoded ClientProof.
	Proof []byte
	// WithoutProof is client-final-message-without-proof, part of the
	// AuthMessage.
	WithoutProof string
}

// ParseClientFinal parses a client-final-message:
// c=<base64 gs2 header>,r=<nonce>[,extensions],p=<base64 proof>.
func ParseClientFinal(msg []byte) (ClientFinal, error) {
	var cf ClientFinal
	s := string(msg)
	bad := func(why string) (ClientFinal, error) {
		return ClientFinal{}, fmt.Errorf("%w: client-final: %s", ErrScramMalformed, why)
	}
	i := strings.LastIndex(s, ",p=")
	if i < 0 {
		return bad("no proof")
	}
	cf.WithoutProof = s[:i]
	proof, err := base64.StdEncoding.Strict().DecodeString(s[i+3:])
	if err != nil || len(proof) == 0 {
		return bad("bad proof")
	}
	cf.Proof = proof
	attrs := strings.Split(cf.WithoutProof, ",")
	if len(attrs) < 2 {
		return bad("want channel binding and nonce")
	}
	c, ok := strings.CutPrefix(attrs[0], "c=")
	if !ok {
		return bad("no channel binding")
	}
	cb, err := base64.StdEncoding.Strict().DecodeString(c)
	if err != nil {
		return bad("bad channel binding")
	}
	cf.ChannelBinding = string(cb)
	n, ok := strings.CutPrefix(attrs[1], "r=")
	if !ok || !validNonce(n) {
		return bad("bad nonce")
	}
	cf.Nonce = n
	for _, a := range attrs[2:] {
		k, _, ok := strings.Cut(a, "=")
		if !ok || !validExtKey(k) {
			return bad("bad extension")
		}
	}
	return cf, nil
}

// unescapeSaslName undoes RFC 5802's saslname escaping: "=2C" is ",",
// "=3D" is "="; any other "=" is an error.
func unescapeSaslName(s string) (string, error) {
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
			return "", errors.New("bad escape")
		}
		i += 2
	}
	return b.String(), nil
}

// EscapeSaslName is the inverse of the escaping ParseClientFirst undoes.
func EscapeSaslName(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

// validNonce: printable ASCII except ",", not empty.
func validNonce(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// validExtKey: an attribute name, letters only (RFC 5802 attr-val), as
// Kafka also allows for its extension keys (letters and digits).
func validExtKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// ScramServer runs the server side of one SCRAM exchange: Step takes the
// client-first message and returns server-first, then takes client-final
// and returns server-final. It is not safe for concurrent use; a
// connection owns one per login.
type ScramServer struct {
	mech   *ScramMechanism
	lookup func(user string) (ScramCredential, bool)
	rand   io.Reader
	secret []byte // for made-up salts of unknown users
	// serverNonce, when set (tests), replaces the random server nonce.
	serverNonce string

	step      int
	first     ClientFirst
	cred      ScramCredential
	known     bool
	nonce     string // combined nonce
	authFirst string // client-first-bare "," server-first
}

// NewScramServer starts an exchange of mechanism m. lookup returns the
// user's stored credential of m; rand supplies the server nonce (nil
// means crypto/rand). secret, when not empty, is mixed into the salt made
// up for an unknown user, so that such a user is refused at the proof
// like a wrong password, with a salt that stays the same from one try to
// the next, and the exchange does not tell who exists.
func NewScramServer(m *ScramMechanism, lookup func(user string) (ScramCredential, bool), rnd io.Reader, secret []byte) *ScramServer {
	if rnd == nil {
		rnd = rand.Reader
	}
	return &ScramServer{mech: m, lookup: lookup, rand: rnd, secret: secret}
}

// User is the user name the client gave, once the first step ran.
func (s *ScramServer) User() string { return s.first.User }

// Extensions are the client-first extensions (Kafka's tokenauth and the
// like), once the first step ran.
func (s *ScramServer) Extensions() map[string]string { return s.first.Extensions }

// Done reports whether the exchange completed successfully.
func (s *ScramServer) Done() bool { return s.step == 2 }

// Step handles the next client message and returns the server's answer.
// done is true after the server-final message, which means success. Any
// error ends the exchange: ErrScramMalformed for a message the client
// should not have sent, ErrScramFailed for a failed login.
func (s *ScramServer) Step(msg []byte) (resp []byte, done bool, err error) {
	switch s.step {
	case 0:
		cf, err := ParseClientFirst(msg)
		if err != nil {
			return nil, false, err
		}
		if cf.Authzid != "" && cf.Authzid != cf.User {
			return nil, false, fmt.Errorf("%w: authorization identity %q differs from user %q", ErrScramFailed, cf.Authzid, cf.User)
		}
		s.first = cf
		s.cred, s.known = s.lookup(cf.User)
		if !s.known || s.cred.Iterations < 1 || len(s.cred.StoredKey) == 0 {
			s.known = false
			s.cred = ScramCredential{Salt: s.fakeSalt(cf.User), Iterations: ScramDefaultIterations}
		}
		sn := s.serverNonce
		if sn == "" {
			var nb [24]byte
			if _, err := io.ReadFull(s.rand, nb[:]); err != nil {
				return nil, false, fmt.Errorf("auth: server nonce: %w", err)
			}
			sn = base64.RawURLEncoding.EncodeToString(nb[:])
		}
		s.nonce = cf.Nonce + sn
		serverFirst := "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(s.cred.Salt) + ",i=" + strconv.Itoa(s.cred.Iterations)
		s.authFirst = cf.Bare + "," + serverFirst
		s.step = 1
		return []byte(serverFirst), false, nil
	case 1:
		s.step = 3 // any failure ends the exchange
		cf, err := ParseClientFinal(msg)
		if err != nil {
			return nil, false, err
		}
		if cf.ChannelBinding != s.first.GS2Header {
			return nil, false, fmt.Errorf("%w: client-final: channel binding does not match the GS2 header", ErrScramMalformed)
		}
		// librdkafka (up to at least 2.x) sends its client nonce again in
		// front of the combined nonce; Kafka accepts that (it checks that
		// the nonce ends with the combined one), so Sluice accepts exactly
		// that form too.
		if cf.Nonce != s.nonce && cf.Nonce != s.first.Nonce+s.nonce {
			return nil, false, fmt.Errorf("%w: client-final: nonce does not match", ErrScramMalformed)
		}
		if !s.known {
			return nil, false, fmt.Errorf("%w: unknown user", ErrScramFailed)
		}
		authMsg := []byte(s.authFirst + "," + cf.WithoutProof)
		clientSig := s.mech.hmac(s.cred.StoredKey, authMsg)
		if len(cf.Proof) != len(clientSig) {
			return nil, false, fmt.Errorf("%w: invalid proof", ErrScramFailed)
		}
		clientKey := make([]byte, len(clientSig))
		subtle.XORBytes(clientKey, cf.Proof, clientSig)
		if subtle.ConstantTimeCompare(s.mech.hash(clientKey), s.cred.StoredKey) != 1 {
			return nil, false, fmt.Errorf("%w: invalid proof", ErrScramFailed)
		}
		serverSig := s.mech.hmac(s.cred.ServerKey, authMsg)
		s.step = 2
		return []byte("v=" + base64.StdEncoding.EncodeToString(serverSig)), true, nil
	}
	return nil, false, fmt.Errorf("%w: exchange already over", ErrScramMalformed)
}

func (s *ScramServer) fakeSalt(user string) []byte {
	return s.mech.hmac(append([]byte("sluice scram salt:"), s.secret...), []byte(user))[:scramSaltLen]
}

package auth

import (
	"context"
	"crypto/pbkdf2"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sasl/scram"
)

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestScramRFC7677 replays the SCRAM-SHA-256 example of RFC 7677 section 3.
func TestScramRFC7677(t *testing.T) {
	cred, err := ScramCredentialWithSalt(ScramSHA256, "pencil", b64(t, "W22ZaJ0SNY7soEsUEjb6gQ=="), 4096)
	if err != nil {
		t.Fatal(err)
	}
	s := NewScramServer(ScramSHA256, func(u string) (ScramCredential, bool) { return cred, u == "user" }, nil, nil)
	s.serverNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	resp, done, err := s.Step([]byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"))
	if err != nil || done {
		t.Fatalf("client-first: %v, done %v", err, done)
	}
	if want := "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"; string(resp) != want {
		t.Fatalf("server-first = %q, want %q", resp, want)
	}
	resp, done, err = s.Step([]byte("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="))
	if err != nil || !done {
		t.Fatalf("client-final: %v, done %v", err, done)
	}
	if want := "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="; string(resp) != want {
		t.Fatalf("server-final = %q, want %q", resp, want)
	}
	if s.User() != "user" || !s.Done() {
		t.Errorf("User %q Done %v", s.User(), s.Done())
	}
	if _, _, err := s.Step([]byte("again")); !errors.Is(err, ErrScramMalformed) {
		t.Errorf("a step after the end: %v", err)
	}
}

// exchange runs franz-go's SCRAM client against a ScramServer.
func exchange(t *testing.T, m *ScramMechanism, stored map[string]ScramCredential, user, pass string) error {
	t.Helper()
	a := scram.Auth{User: user, Pass: pass}
	mech := a.AsSha256Mechanism()
	if m == ScramSHA512 {
		mech = a.AsSha512Mechanism()
	}
	sess, msg, err := mech.Authenticate(context.Background(), "localhost:9092")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewScramServer(m, func(u string) (ScramCredential, bool) { c, ok := stored[u]; return c, ok }, nil, []byte("secret"))
	for {
		resp, done, err := srv.Step(msg)
		if err != nil {
			return err
		}
		cdone, next, cerr := sess.Challenge(resp)
		if cerr != nil {
			t.Fatalf("client refused the server's answer: %v", cerr)
		}
		if done {
			if !cdone {
				t.Fatal("server done, client not")
			}
			return nil
		}
		msg = next
	}
}

func TestScramWithFranzGoClient(t *testing.T) {
	for _, m := range ScramMechanisms {
		cred, err := NewScramCredential(m, "s3cret,=x", ScramDefaultIterations)
		if err != nil {
			t.Fatal(err)
		}
		stored := map[string]ScramCredential{"al,ice=": cred}
		if err := exchange(t, m, stored, "al,ice=", "s3cret,=x"); err != nil {
			t.Errorf("%s: right password: %v", m.Name, err)
		}
		if err := exchange(t, m, stored, "al,ice=", "wrong"); !errors.Is(err, ErrScramFailed) {
			t.Errorf("%s: wrong password: %v", m.Name, err)
		}
		if err := exchange(t, m, stored, "bob", "s3cret,=x"); !errors.Is(err, ErrScramFailed) {
			t.Errorf("%s: unknown user: %v", m.Name, err)
		}
		// A credential of the other mechanism does not verify.
		other := ScramSHA512
		if m == ScramSHA512 {
			other = ScramSHA256
		}
		if err := exchange(t, other, stored, "al,ice=", "s3cret,=x"); !errors.Is(err, ErrScramFailed) {
			t.Errorf("%s credential used for %s: %v", m.Name, other.Name, err)
		}
	}
}

// librdkafka writes the client nonce twice in client-final ("r=" client
// nonce + the server's whole "r"); Kafka accepts it, so must Sluice.
func TestScramLibrdkafkaNonce(t *testing.T) {
	cred, _ := ScramCredentialWithSalt(ScramSHA256, "pencil", b64(t, "W22ZaJ0SNY7soEsUEjb6gQ=="), 4096)
	m := ScramSHA256
	for _, tt := range []struct {
		name, finalNonce string
		ok               bool
	}{
		{"RFC form", "cnoncesnonce", true},
		{"librdkafka form", "cnoncecnoncesnonce", true},
		{"other prefix", "xcnoncesnonce", false},
	} {
		s := NewScramServer(m, func(string) (ScramCredential, bool) { return cred, true }, nil, nil)
		s.serverNonce = "snonce"
		first := "n=user,r=cnonce"
		serverFirst, _, err := s.Step([]byte("n,," + first))
		if err != nil {
			t.Fatal(err)
		}
		// The client's side, computed here from the password.
		salted := pbkdf2Key(t, m, "pencil", cred.Salt, 4096)
		clientKey := m.hmac(salted, []byte("Client Key"))
		withoutProof := "c=biws,r=" + tt.finalNonce
		sig := m.hmac(m.hash(clientKey), []byte(first+","+string(serverFirst)+","+withoutProof))
		proof := make([]byte, len(sig))
		for i := range sig {
			proof[i] = clientKey[i] ^ sig[i]
		}
		_, done, err := s.Step([]byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)))
		if done != tt.ok || (err == nil) != tt.ok {
			t.Errorf("%s: done %v, err %v; want ok %v", tt.name, done, err, tt.ok)
		}
	}
}

func pbkdf2Key(t *testing.T, m *ScramMechanism, password string, salt []byte, iter int) []byte {
	t.Helper()
	k, err := pbkdf2.Key(m.newHash, password, salt, iter, m.newHash().Size())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestScramUnknownUserSaltStable(t *testing.T) {
	none := func(string) (ScramCredential, bool) { return ScramCredential{}, false }
	first := func() string {
		s := NewScramServer(ScramSHA512, none, nil, []byte("k"))
		s.serverNonce = "x"
		r, _, err := s.Step([]byte("n,,n=ghost,r=abc"))
		if err != nil {
			t.Fatal(err)
		}
		return string(r)
	}
	if a, b := first(), first(); a != b {
		t.Errorf("made-up salt differs between tries: %q, %q", a, b)
	}
}

func TestParseClientFirst(t *testing.T) {
	cf, err := ParseClientFirst([]byte("n,a=bob,n=bob,r=nonce1,tokenauth=true"))
	if err != nil {
		t.Fatal(err)
	}
	if cf.GS2Header != "n,a=bob," || cf.Authzid != "bob" || cf.User != "bob" || cf.Nonce != "nonce1" ||
		cf.Bare != "n=bob,r=nonce1,tokenauth=true" || cf.Extensions["tokenauth"] != "true" {
		t.Errorf("parsed %+v", cf)
	}
	if cf, err := ParseClientFirst([]byte("y,,n=a=2Cb=3Dc,r=x")); err != nil || cf.User != "a,b=c" {
		t.Errorf("escaped name: %+v %v", cf, err)
	}
	for _, in := range []string{
		"", "n", "n,", "n,,", "x,,n=u,r=n", "p=tls-unique,,n=u,r=n", "n,b=u,n=u,r=n",
		"n,,r=n,n=u", "n,,n=,r=n", "n,,n=u", "n,,n=u,r=", "n,,n=u,r=a b", "n,,n=a=2Xb,r=n",
		"n,,m=x,n=u,r=n", "n,,n=u,r=n,=v", "n,,n=u,r=n,novalue", "n,a=,n=u,r=n",
	} {
		if _, err := ParseClientFirst([]byte(in)); !errors.Is(err, ErrScramMalformed) {
			t.Errorf("ParseClientFirst(%q) = %v, want malformed", in, err)
		}
	}
}

func TestParseClientFinal(t *testing.T) {
	cf, err := ParseClientFinal([]byte("c=biws,r=abc,ext=1,p=AAEC"))
	if err != nil {
		t.Fatal(err)
	}
	if cf.ChannelBinding != "n,," || cf.Nonce != "abc" || string(cf.Proof) != "\x00\x01\x02" || cf.WithoutProof != "c=biws,r=abc,ext=1" {
		t.Errorf("parsed %+v", cf)
	}
	for _, in := range []string{
		"", "p=AAEC", "c=biws,p=AAEC", "r=abc,c=biws,p=AAEC", "c=biws,r=abc,p=", "c=biws,r=abc,p=!!",
		"c=b!ws,r=abc,p=AAEC", "c=biws,r=,p=AAEC", "c=biws,r=abc,junk,p=AAEC", "c=biws,r=abc",
	} {
		if _, err := ParseClientFinal([]byte(in)); !errors.Is(err, ErrScramMalformed) {
			t.Errorf("ParseClientFinal(%q) = %v, want malformed", in, err)
		}
	}
}

func TestScramRefusesMismatches(t *testing.T) {
	cred, _ := ScramCredentialWithSalt(ScramSHA256, "pencil", []byte("salt"), 4096)
	lookup := func(string) (ScramCredential, bool) { return cred, true }
	tests := []struct {
		name, first, final string
		err                error
	}{
		{"other authzid", "n,a=root,n=user,r=c", "", ErrScramFailed},
		{"channel binding differs", "n,,n=user,r=c", "c=eSws,r=cS,p=AAEC", ErrScramMalformed},
		{"nonce differs", "n,,n=user,r=c", "c=biws,r=cX,p=AAEC", ErrScramMalformed},
		{"short proof", "n,,n=user,r=c", "c=biws,r=cS,p=AAEC", ErrScramFailed},
	}
	for _, tt := range tests {
		s := NewScramServer(ScramSHA256, lookup, nil, nil)
		s.serverNonce = "S"
		_, _, err := s.Step([]byte(tt.first))
		if err == nil {
			_, _, err = s.Step([]byte(tt.final))
		}
		if !errors.Is(err, tt.err) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.err)
		}
	}
}

func FuzzParseClientFirst(f *testing.F) {
	for _, s := range []string{"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", "y,a=u,n=u,r=x,tokenauth=true", "n,,n=a=2Cb,r=x", "p=x,,n=u,r=n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		cf, err := ParseClientFirst(in)
		if err != nil {
			return
		}
		if cf.User == "" || !validNonce(cf.Nonce) || cf.GS2Header+cf.Bare != string(in) {
			t.Errorf("accepted %q as %+v", in, cf)
		}
		if (cf.Authzid != "") != (len(cf.GS2Header) > 3) {
			t.Errorf("authzid %q with header %q", cf.Authzid, cf.GS2Header)
		}
	})
}

func FuzzParseClientFinal(f *testing.F) {
	for _, s := range []string{"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", "c=biws,r=a,x=y,p=AA=="} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		cf, err := ParseClientFinal(in)
		if err != nil {
			return
		}
		if len(cf.Proof) == 0 || !validNonce(cf.Nonce) || len(cf.WithoutProof) >= len(in) {
			t.Errorf("accepted %q as %+v", in, cf)
		}
	})
}

// FuzzScramServer feeds arbitrary client messages to a server exchange: it
// must never panic, and never succeed without the right proof.
func FuzzScramServer(f *testing.F) {
	f.Add([]byte("n,,n=user,r=c"), []byte("c=biws,r=cS,p=AAEC"))
	cred, _ := ScramCredentialWithSalt(ScramSHA256, "pencil", []byte("salt"), 4096)
	f.Fuzz(func(t *testing.T, first, final []byte) {
		s := NewScramServer(ScramSHA256, func(string) (ScramCredential, bool) { return cred, true }, nil, nil)
		s.serverNonce = "S"
		if _, _, err := s.Step(first); err != nil {
			return
		}
		if _, done, err := s.Step(final); done || err == nil {
			t.Errorf("a made-up proof passed: %q / %q", first, final)
		}
	})
}

// BenchmarkScramServerLogin is the server's CPU per SCRAM-SHA-512 login:
// parse both client messages, two HMACs and a hash, one HMAC for the
// answer. The client's PBKDF2 (4096 iterations) is done once outside the
// loop; it is the client's cost, not the broker's.
func BenchmarkScramServerLogin(b *testing.B) {
	m := ScramSHA512
	salt := []byte("0123456789abcdef0123456789abcdef")
	cred, _ := ScramCredentialWithSalt(m, "secret", salt, ScramDefaultIterations)
	salted, _ := pbkdf2.Key(m.newHash, "secret", salt, ScramDefaultIterations, m.newHash().Size())
	clientKey := m.hmac(salted, []byte("Client Key"))
	lookup := func(string) (ScramCredential, bool) { return cred, true }
	b.ReportAllocs()
	for b.Loop() {
		s := NewScramServer(m, lookup, nil, nil)
		first := "n=user,r=clientnonce"
		sf, _, err := s.Step([]byte("n,," + first))
		if err != nil {
			b.Fatal(err)
		}
		r := strings.TrimPrefix(strings.SplitN(string(sf), ",", 2)[0], "r=")
		without := "c=biws,r=" + r
		sig := m.hmac(m.hash(clientKey), []byte(first+","+string(sf)+","+without))
		proof := make([]byte, len(sig))
		subtle.XORBytes(proof, clientKey, sig)
		if _, done, err := s.Step([]byte(without + ",p=" + base64.StdEncoding.EncodeToString(proof))); !done || err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewScramCredentials is the cost of setting a password: both
// SCRAM credentials (PBKDF2 with 4096 iterations each).
func BenchmarkNewScramCredentials(b *testing.B) {
	for b.Loop() {
		if _, err := NewScramCredentials("secret"); err != nil {
			b.Fatal(err)
		}
	}
}

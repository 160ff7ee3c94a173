package auth

import (
	"bytes"
	"errors"
	"testing"
)

func TestParsePlain(t *testing.T) {
	tests := []struct {
		name           string
		in             string
		user, password string
		err            error
	}{
		{"no authzid", "\x00guest\x00guest", "guest", "guest", nil},
		{"authzid equal to user", "guest\x00guest\x00pw", "guest", "pw", nil},
		{"empty password parses", "\x00guest\x00", "guest", "", nil},
		{"password with spaces and UTF-8", "\x00user\x00p a ß", "user", "p a ß", nil},
		{"bytes are not checked", "\x00u\xff\x00p\xfe", "u\xff", "p\xfe", nil},
		{"empty", "", "", "", ErrPlainMalformed},
		{"no NUL", "guestguest", "", "", ErrPlainMalformed},
		{"one NUL", "\x00guest", "", "", ErrPlainMalformed},
		{"three NULs", "\x00guest\x00pass\x00", "", "", ErrPlainMalformed},
		{"NUL inside password", "\x00guest\x00pa\x00ss", "", "", ErrPlainMalformed},
		{"empty user", "\x00\x00pass", "", "", ErrPlainMalformed},
		{"only NULs", "\x00\x00", "", "", ErrPlainMalformed},
		{"other authzid", "admin\x00guest\x00guest", "", "", ErrPlainAuthzid},
	}
	for _, tt := range tests {
		user, password, err := ParsePlain([]byte(tt.in))
		if !errors.Is(err, tt.err) || (tt.err != nil) != (err != nil) {
			t.Errorf("%s: ParsePlain(%q) error = %v, want %v", tt.name, tt.in, err, tt.err)
			continue
		}
		if user != tt.user || password != tt.password {
			t.Errorf("%s: ParsePlain(%q) = %q, %q; want %q, %q", tt.name, tt.in, user, password, tt.user, tt.password)
		}
	}
}

func FuzzParsePlain(f *testing.F) {
	for _, s := range []string{"\x00guest\x00guest", "guest\x00guest\x00guest", "a\x00b\x00c", "\x00\x00", "", "\x00a\x00b\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		user, password, err := ParsePlain(in)
		if !bytes.Equal(in, orig) {
			t.Fatal("ParsePlain modified its input")
		}
		if err != nil {
			if user != "" || password != "" {
				t.Fatalf("error %v with non-empty results %q, %q", err, user, password)
			}
			return
		}
		if user == "" || bytes.IndexByte([]byte(user+password), 0) >= 0 {
			t.Fatalf("ParsePlain(%q) = %q, %q: empty user or NUL in a result", in, user, password)
		}
		// The response must be exactly one of the two accepted forms.
		if string(in) != "\x00"+user+"\x00"+password && string(in) != user+"\x00"+user+"\x00"+password {
			t.Fatalf("ParsePlain(%q) = %q, %q, which does not rebuild the input", in, user, password)
		}
	})
}

package auth

import (
	"encoding/base64"
	"strings"
	"testing"
)

// Hashes produced by RabbitMQ itself, so they pin down compatibility.
var rabbitHashes = []struct {
	password, hash, source string
}{
	// The guest user of a definitions file exported by RabbitMQ 3.13.2.
	{"guest", "BMfxN8drrYcIqXZMr+pWTpDT0nMcOagMduLX0bjr4jwud/pN", "RabbitMQ 3.13.2 definitions export"},
	// Output of "rabbitmqctl hash-password chat1234" (rabbitmq:4 image).
	{"chat1234", "2TpEAVhROmPU9uKZanKsBIR8itaXt9ifkH2Y/cif2L1iihQ8", "rabbitmqctl hash-password"},
}

func TestRabbitMQHashes(t *testing.T) {
	for _, tt := range rabbitHashes {
		if !CheckPassword(tt.hash, tt.password) {
			t.Errorf("%s: CheckPassword(%q, %q) = false", tt.source, tt.hash, tt.password)
		}
		if CheckPassword(tt.hash, tt.password+"x") {
			t.Errorf("%s: a wrong password verifies", tt.source)
		}
		raw, _ := base64.StdEncoding.DecodeString(tt.hash)
		if got := HashPasswordWithSalt(tt.password, [4]byte(raw[:4])); got != tt.hash {
			t.Errorf("%s: HashPasswordWithSalt with RabbitMQ's salt = %q, want %q", tt.source, got, tt.hash)
		}
	}
}

func TestHashPasswordWithSaltGolden(t *testing.T) {
	tests := []struct {
		password string
		salt     [4]byte
		want     string
	}{
		// The salt of the worked example on rabbitmq-discuss, with SHA-256.
		{"simon", [4]byte{0xCA, 0xD5, 0x08, 0x9B}, "ytUIm1ruBv8dbuXf8jo3yKhGfE9Xu5vXpi7ti/E17ovdt2wK"},
		// The password is hashed as its UTF-8 bytes.
		{"pässwörd", [4]byte{}, "AAAAACINqH41lcTx0J9GvrtSLdzfhEqLw7MLa5cKP7SfEsnH"},
	}
	for _, tt := range tests {
		if got := HashPasswordWithSalt(tt.password, tt.salt); got != tt.want {
			t.Errorf("HashPasswordWithSalt(%q, % x) = %q, want %q", tt.password, tt.salt, got, tt.want)
		}
		if !CheckPassword(tt.want, tt.password) {
			t.Errorf("CheckPassword(%q, %q) = false", tt.want, tt.password)
		}
	}
}

func TestHashPasswordSalts(t *testing.T) {
	h1, err := HashPassword("secret")
	if err != nil {
		t.Fatal(err)
	}
	h2, err := HashPassword("secret")
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 {
		t.Errorf("two hashes of one password are equal (%q): salt not random", h1)
	}
	for _, h := range []string{h1, h2} {
		if len(h) != 48 || !CheckPassword(h, "secret") || CheckPassword(h, "Secret") {
			t.Errorf("hash %q: wrong length or does not verify", h)
		}
	}
}

func TestCheckPasswordRefuses(t *testing.T) {
	emptyHash := HashPasswordWithSalt("", [4]byte{1, 2, 3, 4})
	sha512Length := base64.StdEncoding.EncodeToString(make([]byte, 4+64))
	md5Length := "ytUIm8s3AnKsXQjptplKFytfVxI=" // a legacy MD5 hash of "simon"
	tests := []struct {
		name, hash, password string
	}{
		{"blank password, even if it is the hashed one", emptyHash, ""},
		{"user without password", "", "guest"},
		{"not base64", "not base64!", "guest"},
		{"truncated", rabbitHashes[0].hash[:47], "guest"},
		{"extra padding", rabbitHashes[0].hash + "==", "guest"},
		{"URL alphabet", strings.NewReplacer("+", "-", "/", "_").Replace(rabbitHashes[0].hash), "guest"},
		{"one byte short", base64.StdEncoding.EncodeToString(make([]byte, 35)), "guest"},
		{"SHA-512 length", sha512Length, "guest"},
		{"MD5 scheme", md5Length, "simon"},
		{"whitespace", " " + rabbitHashes[0].hash, "guest"},
	}
	for _, tt := range tests {
		if CheckPassword(tt.hash, tt.password) {
			t.Errorf("%s: CheckPassword(%q, %q) = true", tt.name, tt.hash, tt.password)
		}
	}
}

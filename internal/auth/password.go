package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
)

// saltLen is the salt size of rabbit_password_hashing_sha256: 32 bits.
const saltLen = 4

// HashPassword hashes password with a fresh random salt, as RabbitMQ's
// rabbit_password_hashing_sha256 does.
func HashPassword(password string) (string, error) {
	var salt [saltLen]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return "", fmt.Errorf("auth: reading salt: %w", err)
	}
	return HashPasswordWithSalt(password, salt), nil
}

// HashPasswordWithSalt returns base64(salt || SHA-256(salt || password)).
// It exists for tests and for importing known hashes; use HashPassword.
func HashPasswordWithSalt(password string, salt [saltLen]byte) string {
	sum := saltedHash(salt, password)
	raw := append(salt[:], sum[:]...)
	return base64.StdEncoding.EncodeToString(raw)
}

// CheckPassword reports whether password matches hash. It is false for a
// blank password (RabbitMQ refuses those whatever the hash), for a hash
// that is not standard base64 of 4+32 bytes (including the empty hash of a
// user without a password), and for a wrong password. The digest
// comparison takes constant time.
func CheckPassword(hash, password string) bool {
	if password == "" {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(hash)
	if err != nil || len(raw) != saltLen+sha256.Size {
		return false
	}
	sum := saltedHash([saltLen]byte(raw[:saltLen]), password)
	return subtle.ConstantTimeCompare(sum[:], raw[saltLen:]) == 1
}

func saltedHash(salt [saltLen]byte, password string) [sha256.Size]byte {
	h := sha256.New()
	h.Write(salt[:])
	h.Write([]byte(password))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

package auth

import (
	"bytes"
	"errors"
	"fmt"
)

// Errors from ParsePlain. Both mean the client sent a response it should
// not have; the AMQP front end closes the connection, the Kafka front end
// answers with a SASL authentication failure.
var (
	ErrPlainMalformed = errors.New("auth: malformed SASL PLAIN response")
	ErrPlainAuthzid   = errors.New("auth: SASL PLAIN authorization identity differs from the user")
)

// ParsePlain splits a SASL PLAIN response, [authzid] NUL authcid NUL
// passwd, into user (authcid) and password. The response must hold exactly
// two NULs and a non-empty user; the password may be empty here and is
// refused by CheckPassword. An authzid is accepted only if it is empty or
// equal to the user, since Sluice does not let one user act as another.
func ParsePlain(response []byte) (user, password string, err error) {
	authzid, rest, ok := bytes.Cut(response, []byte{0})
	if !ok {
		return "", "", fmt.Errorf("%w: no NUL separator", ErrPlainMalformed)
	}
	authcid, passwd, ok := bytes.Cut(rest, []byte{0})
	if !ok {
		return "", "", fmt.Errorf("%w: one NUL separator, want two", ErrPlainMalformed)
	}
	if bytes.IndexByte(passwd, 0) >= 0 {
		return "", "", fmt.Errorf("%w: more than two NUL separators", ErrPlainMalformed)
	}
	if len(authcid) == 0 {
		return "", "", fmt.Errorf("%w: empty user name", ErrPlainMalformed)
	}
	if len(authzid) > 0 && !bytes.Equal(authzid, authcid) {
		return "", "", ErrPlainAuthzid
	}
	return string(authcid), string(passwd), nil
}

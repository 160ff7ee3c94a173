package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// ClientAuth values: what a TLS listener asks of a client's certificate.
const (
	// ClientAuthNone asks for no client certificate.
	ClientAuthNone = "none"
	// ClientAuthRequest asks for one and verifies it against the CA when
	// given; a client without one still connects (RabbitMQ's verify_peer
	// with fail_if_no_peer_cert false).
	ClientAuthRequest = "request"
	// ClientAuthRequire refuses a client without a certificate the CA
	// signed (mutual TLS).
	ClientAuthRequire = "require"
)

// Files name a server's certificate, key and CA files.
type Files struct {
	// Cert is the server certificate chain (PEM), leaf first.
	Cert string
	// Key is the server certificate's private key (PEM).
	Key string
	// CA holds the certificates (PEM) that client certificates must
	// chain to; required unless ClientAuth is none.
	CA string
	// ClientAuth is none, request or require. Default none.
	ClientAuth string
}

// Source builds the server TLS configuration from Files and rebuilds it
// when the files change. Safe for concurrent use.
type Source struct {
	files Files
	auth  tls.ClientAuthType
	log   *slog.Logger

	mu      sync.Mutex
	cur     *tls.Config
	loaded  fileStamps // of the files cur was built from
	failed  fileStamps // of the files the last failed reload read
	reloads int
}

// fileStamp identifies one version of a file: enough to see it replaced.
type fileStamp struct {
	mod  time.Time
	size int64
}

type fileStamps [3]fileStamp // cert, key, CA

// NewSource loads the files; an error means they are missing or do not
// make a usable configuration.
func NewSource(f Files, log *slog.Logger) (*Source, error) {
	if log == nil {
		log = slog.Default()
	}
	auth, err := parseClientAuth(f.ClientAuth)
	if err != nil {
		return nil, err
	}
	if auth != tls.NoClientCert && f.CA == "" {
		return nil, fmt.Errorf("tls: client auth %q needs a CA file", f.ClientAuth)
	}
	s := &Source{files: f, auth: auth, log: log}
	st, err := s.stamps()
	if err != nil {
		return nil, err
	}
	if s.cur, err = s.build(); err != nil {
		return nil, err
	}
	s.loaded = st
	return s, nil
}

func parseClientAuth(v string) (tls.ClientAuthType, error) {
	switch v {
	case "", ClientAuthNone:
		return tls.NoClientCert, nil
	case ClientAuthRequest:
		return tls.VerifyClientCertIfGiven, nil
	case ClientAuthRequire:
		return tls.RequireAndVerifyClientCert, nil
	}
	return 0, fmt.Errorf("tls: client auth %q: want none, request or require", v)
}

// ValidClientAuth reports whether v is a ClientAuth value.
func ValidClientAuth(v string) bool {
	_, err := parseClientAuth(v)
	return err == nil
}

// Config is the configuration a TLS listener serves with: every handshake
// gets the current one (reloaded if the files changed).
func (s *Source) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.current(), nil
		},
	}
}

// Reloads is how many times the files were loaded again after a change.
func (s *Source) Reloads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloads
}

// current returns the configuration for a handshake, reloading it first
// if the files changed since it was built.
func (s *Source) current() *tls.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.stamps()
	if err != nil || st == s.loaded {
		if err != nil && st != s.failed {
			s.failed = st
			s.log.Warn("TLS files unreadable; serving the certificate loaded before", "err", err)
		}
		return s.cur
	}
	cfg, err := s.build()
	if err != nil {
		if st != s.failed {
			s.failed = st
			s.log.Warn("TLS files changed but do not load; serving the certificate loaded before", "err", err)
		}
		return s.cur
	}
	s.cur, s.loaded, s.failed = cfg, st, fileStamps{}
	s.reloads++
	s.log.Info("TLS certificate reloaded", "cert", s.files.Cert, "subject", leafSubject(cfg))
	return s.cur
}

func leafSubject(cfg *tls.Config) string {
	if len(cfg.Certificates) == 0 || cfg.Certificates[0].Leaf == nil {
		return ""
	}
	return cfg.Certificates[0].Leaf.Subject.String()
}

func (s *Source) stamps() (fileStamps, error) {
	var st fileStamps
	var errs []error
	for i, name := range []string{s.files.Cert, s.files.Key, s.files.CA} {
		if name == "" {
			continue
		}
		fi, err := os.Stat(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		st[i] = fileStamp{fi.ModTime(), fi.Size()}
	}
	return st, errors.Join(errs...)
}

// build reads the files into a configuration.
func (s *Source) build() (*tls.Config, error) {
	if s.files.Cert == "" || s.files.Key == "" {
		return nil, errors.New("tls: a certificate and a key file are needed")
	}
	cert, err := tls.LoadX509KeyPair(s.files.Cert, s.files.Key)
	if err != nil {
		return nil, fmt.Errorf("tls: %s, %s: %w", s.files.Cert, s.files.Key, err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   s.auth,
		// Full 16 KiB records from the first byte: the broker's answers
		// are bulk (fetches, deliveries) on long-lived connections, where
		// the small first records meant for web pages only cost more
		// records, MACs and writes.
		DynamicRecordSizingDisabled: true,
	}
	if s.files.CA != "" {
		pem, err := os.ReadFile(s.files.CA)
		if err != nil {
			return nil, fmt.Errorf("tls: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: CA file %s holds no PEM certificate", s.files.CA)
		}
		cfg.ClientCAs = pool
	}
	return cfg, nil
}

package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// devSet makes a dev CA with server and client certificates in a new
// directory.
func devSet(t *testing.T, o DevOptions) string {
	t.Helper()
	dir := t.TempDir()
	if err := DevCerts(dir, o); err != nil {
		t.Fatal(err)
	}
	return dir
}

func clientConfig(t *testing.T, caDir, certDir string) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(caDir, DevCACert))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	if certDir != "" {
		c, err := tls.LoadX509KeyPair(filepath.Join(certDir, DevClientCert), filepath.Join(certDir, DevClientKey))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg
}

// serve starts a TLS listener that reports each accepted connection's
// PeerUser and answers "ok".
func serve(t *testing.T, src *Source, name string) (addr string, users chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := Listen(ln, src.Config(), name, nil)
	t.Cleanup(func() { tl.Close() })
	users = make(chan string, 16)
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			u, _ := PeerUser(c)
			users <- u
			c.Write([]byte("ok"))
			c.Close()
		}
	}()
	return ln.Addr().String(), users
}

func dial(addr string, cfg *tls.Config) (*x509.Certificate, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// With TLS 1.3 a refused client certificate shows on the first read.
	if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0], nil
}

func waitFailures(t *testing.T, name string, want int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for HandshakeFailures(name) < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s handshake failures = %d, want %d", name, HandshakeFailures(name), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMutualTLSPrincipalAndRefusals(t *testing.T) {
	dir := devSet(t, DevOptions{ClientCN: "alice"})
	src, err := NewSource(Files{
		Cert: filepath.Join(dir, DevServerCert), Key: filepath.Join(dir, DevServerKey),
		CA: filepath.Join(dir, DevCACert), ClientAuth: ClientAuthRequire,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, users := serve(t, src, "test-mtls")
	if _, err := dial(addr, clientConfig(t, dir, dir)); err != nil {
		t.Fatalf("trusted client refused: %v", err)
	}
	if u := <-users; u != "alice" {
		t.Fatalf("PeerUser = %q, want alice", u)
	}

	other := devSet(t, DevOptions{ClientCN: "mallory"}) // another CA
	// Signed by the trusted CA, expired an hour ago.
	expired := devSet(t, DevOptions{ClientCN: "bob", Validity: -time.Hour, CADir: dir})
	for i, c := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"no client certificate", clientConfig(t, dir, "")},
		{"untrusted client certificate", clientConfig(t, dir, other)},
		{"expired client certificate", clientConfig(t, dir, expired)},
	} {
		if _, err := dial(addr, c.cfg); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
		waitFailures(t, "test-mtls", int64(i+1))
	}
	// A plain-text client.
	pc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	pc.Write([]byte("\x00\x00\x00\x10hello kafka....."))
	io.Copy(io.Discard, pc)
	pc.Close()
	waitFailures(t, "test-mtls", 4)
	select {
	case u := <-users:
		t.Fatalf("a refused client reached Accept (user %q)", u)
	default:
	}
}

func TestExpiredServerCertificateAndReload(t *testing.T) {
	dir := devSet(t, DevOptions{})
	cert, key := filepath.Join(dir, DevServerCert), filepath.Join(dir, DevServerKey)
	src, err := NewSource(Files{Cert: cert, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, src, "test-reload")
	first, err := dial(addr, clientConfig(t, dir, ""))
	if err != nil {
		t.Fatal(err)
	}
	// Replace the files with a new CA's: the next handshake serves the
	// new certificate, which the old CA does not verify and the new does.
	next := devSet(t, DevOptions{})
	for _, f := range []string{DevServerCert, DevServerKey} {
		data, err := os.ReadFile(filepath.Join(next, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := writeFileAtomic(filepath.Join(dir, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	second, err := dial(addr, clientConfig(t, next, ""))
	if err != nil {
		t.Fatalf("new certificate not served: %v", err)
	}
	if first.SerialNumber.Cmp(second.SerialNumber) == 0 {
		t.Fatal("same certificate served after the files changed")
	}
	if _, err := dial(addr, clientConfig(t, dir, "")); err == nil {
		t.Fatal("the old CA still verifies the server after the reload")
	}
	if src.Reloads() != 1 {
		t.Fatalf("reloads = %d, want 1", src.Reloads())
	}
	// A key that does not match the certificate: the broker keeps the
	// certificate it has.
	if err := os.WriteFile(key, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := dial(addr, clientConfig(t, next, "")); err != nil {
		t.Fatalf("a bad key file broke the listener: %v", err)
	}

	expired := devSet(t, DevOptions{Validity: -time.Hour})
	esrc, err := NewSource(Files{Cert: filepath.Join(expired, DevServerCert), Key: filepath.Join(expired, DevServerKey)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eaddr, _ := serve(t, esrc, "test-expired")
	if _, err := dial(eaddr, clientConfig(t, expired, "")); err == nil {
		t.Fatal("client accepted an expired server certificate")
	}
}

func TestSourceRefusesBadSettings(t *testing.T) {
	dir := devSet(t, DevOptions{})
	f := Files{Cert: filepath.Join(dir, DevServerCert), Key: filepath.Join(dir, DevServerKey)}
	for _, c := range []Files{
		{Cert: f.Cert, Key: f.Key, ClientAuth: "sometimes"},
		{Cert: f.Cert, Key: f.Key, ClientAuth: ClientAuthRequire}, // no CA
		{Cert: f.Cert, Key: filepath.Join(dir, DevClientKey)},     // key of another cert
		{Cert: filepath.Join(dir, "missing.pem"), Key: f.Key},
	} {
		if _, err := NewSource(c, nil); err == nil {
			t.Errorf("NewSource(%+v) accepted", c)
		}
	}
}

func TestMinimumVersionIsTLS12(t *testing.T) {
	dir := devSet(t, DevOptions{})
	src, err := NewSource(Files{Cert: filepath.Join(dir, DevServerCert), Key: filepath.Join(dir, DevServerKey)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, src, "test-version")
	cfg := clientConfig(t, dir, "")
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS11, tls.VersionTLS11
	if _, err := dial(addr, cfg); err == nil {
		t.Fatal("a TLS 1.1 client was served")
	}
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	if _, err := dial(addr, cfg); err != nil {
		t.Fatalf("a TLS 1.2 client was refused: %v", err)
	}
}

package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Dev certificate file names, in the directory DevCerts writes.
const (
	DevCACert     = "ca.pem"
	DevCAKey      = "ca.key"
	DevServerCert = "server.pem"
	DevServerKey  = "server.key"
	DevClientCert = "client.pem"
	DevClientKey  = "client.key"
)

// DevOptions shape the certificates DevCerts makes.
type DevOptions struct {
	// ClientCN is the client certificate's subject common name, the user
	// it logs in as with mutual TLS. Default "guest".
	ClientCN string
	// Hosts are the server certificate's DNS names and IP addresses.
	// Default localhost, 127.0.0.1 and ::1.
	Hosts []string
	// Validity is how long the certificates are valid from now. Default
	// one year. A negative validity makes certificates that expired
	// that long ago (for tests of refusal).
	Validity time.Duration
	// Now is the time the validity counts from. Default time.Now().
	Now time.Time
	// CADir, when set, is a directory DevCerts wrote before: its CA
	// (ca.pem, ca.key) signs the new certificates instead of a new CA,
	// and its ca.pem is copied to the new directory. This is how more
	// client certificates (other users) come from one CA.
	CADir string
}

// DevCerts writes a new CA and a server and a client certificate it
// signs (ECDSA P-256 keys) to dir, created if need be: for trying TLS on
// one machine and for tests, not for production. Keys are written
// readable by their owner only. Existing files are replaced.
func DevCerts(dir string, o DevOptions) error {
	if o.ClientCN == "" {
		o.ClientCN = "guest"
	}
	if len(o.Hosts) == 0 {
		o.Hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	if o.Validity == 0 {
		o.Validity = 365 * 24 * time.Hour
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	notBefore, notAfter := o.Now.Add(-time.Hour), o.Now.Add(o.Validity)
	if o.Validity < 0 {
		notBefore, notAfter = o.Now.Add(2*o.Validity), o.Now.Add(o.Validity)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var (
		ca    *x509.Certificate
		caKey *ecdsa.PrivateKey
		err   error
	)
	if o.CADir != "" {
		ca, caKey, err = loadCA(o.CADir)
		if err == nil {
			err = writeCert(filepath.Join(dir, DevCACert), ca.Raw)
		}
	} else {
		ca, caKey, err = newCA(dir, notBefore, notAfter)
	}
	if err != nil {
		return err
	}
	server := &x509.Certificate{
		Subject:   pkix.Name{CommonName: o.Hosts[0], Organization: []string{"Sluice dev-cert"}},
		NotBefore: notBefore,
		NotAfter:  notAfter,
		KeyUsage:  x509.KeyUsageDigitalSignature,
		// Client authentication too: a cluster node presents its server
		// certificate when it dials another node (mutual TLS between
		// nodes, config.Config.Cluster).
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range o.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			server.IPAddresses = append(server.IPAddresses, ip)
		} else {
			server.DNSNames = append(server.DNSNames, h)
		}
	}
	client := &x509.Certificate{
		Subject:     pkix.Name{CommonName: o.ClientCN, Organization: []string{"Sluice dev-cert"}},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, leaf := range []struct {
		tmpl      *x509.Certificate
		cert, key string
	}{{server, DevServerCert, DevServerKey}, {client, DevClientCert, DevClientKey}} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		der, _, err := sign(leaf.tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		if err := writeCert(filepath.Join(dir, leaf.cert), der); err != nil {
			return err
		}
		if err := writeKey(filepath.Join(dir, leaf.key), key); err != nil {
			return err
		}
	}
	return nil
}

// newCA makes a CA certificate and key and writes them to dir.
func newCA(dir string, notBefore, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "Sluice development CA", Organization: []string{"Sluice dev-cert"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, ca, err := sign(caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	if err := writeCert(filepath.Join(dir, DevCACert), caDER); err != nil {
		return nil, nil, err
	}
	if err := writeKey(filepath.Join(dir, DevCAKey), caKey); err != nil {
		return nil, nil, err
	}
	return ca, caKey, nil
}

// loadCA reads the CA a former DevCerts wrote to dir.
func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, DevCACert))
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, DevCAKey))
	if err != nil {
		return nil, nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, fmt.Errorf("dev-cert: %s: no PEM CA certificate and key", dir)
	}
	ca, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("dev-cert: %s: the CA key is not ECDSA", dir)
	}
	return ca, key, nil
}

func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, priv *ecdsa.PrivateKey) ([]byte, *x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		return nil, nil, fmt.Errorf("dev-cert: %s: %w", tmpl.Subject.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	return der, c, err
}

func writeCert(path string, der []byte) error {
	return writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it over path, so that a broker reloading path reads the old file or
// the new one, never half of one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	if err := os.Chmod(tmp, perm); err != nil {
		return errors.Join(err, os.Remove(tmp))
	}
	return os.Rename(tmp, path)
}

package cli

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluice-mq/sluice/internal/tlsconf"
	"github.com/spf13/cobra"
)

func init() { clientCommands = append(clientCommands, newTLSCmd) }

func newTLSCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tls",
		Short: "TLS helpers",
	}
	cmd.AddCommand(newDevCertCmd())
	return cmd
}

func newDevCertCmd() *cobra.Command {
	var (
		dir, clientCN, caDir string
		hosts                []string
		validity             time.Duration
	)
	cmd := &cobra.Command{
		Use:   "dev-cert",
		Short: "Make a CA and server and client certificates for trying TLS",
		Long: `Make a development CA and a server and a client certificate it signs, as PEM
files in --dir: ca.pem, ca.key, server.pem, server.key, client.pem, client.key
(ECDSA P-256 keys, readable by their owner only). The server certificate names
--host (localhost, 127.0.0.1 and ::1 by default); the client certificate's
subject common name is --client-cn, the user it logs in as with mutual TLS
(AMQP EXTERNAL, the Kafka principal). --ca-dir signs with the CA of an earlier
run instead of a new one, to make more client certificates for other users.

For trying TLS on one machine and for tests; not for production, where
certificates come from your own CA. See docs/security.md.`,
		Example: `  sluice tls dev-cert --dir ./certs
  sluice server --amqps-addr :5671 --kafka-tls-addr :9093 --https-addr :15671 \
    --tls-cert certs/server.pem --tls-key certs/server.key --tls-ca certs/ca.pem --tls-client-auth request
  sluice tls dev-cert --dir ./certs-alice --ca-dir ./certs --client-cn alice`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return fmt.Errorf("--dir is required")
			}
			if err := tlsconf.DevCerts(dir, tlsconf.DevOptions{
				ClientCN: clientCN, Hosts: hosts, Validity: validity, CADir: caDir,
			}); err != nil {
				return err
			}
			var files []string
			for _, f := range []string{tlsconf.DevCACert, tlsconf.DevServerCert, tlsconf.DevServerKey, tlsconf.DevClientCert, tlsconf.DevClientKey} {
				files = append(files, filepath.Join(dir, f))
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (client CN %q)\n", strings.Join(files, ", "), clientCN)
			return err
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory to write the certificates and keys to (created if need be)")
	cmd.Flags().StringVar(&clientCN, "client-cn", "guest", "the client certificate's subject common name: the user it logs in as")
	cmd.Flags().StringSliceVar(&hosts, "host", []string{"localhost", "127.0.0.1", "::1"}, "the server certificate's host names and IP addresses")
	cmd.Flags().DurationVar(&validity, "validity", 365*24*time.Hour, "how long the certificates are valid")
	cmd.Flags().StringVar(&caDir, "ca-dir", "", "sign with the CA (ca.pem, ca.key) an earlier dev-cert wrote there instead of a new one")
	return cmd
}

// tlsCAEnv is the environment variable behind the client commands'
// --tls-ca; not SLUICE_TLS_CA, which is the server's tls_ca setting (the
// CA of client certificates).
const tlsCAEnv = "SLUICE_CLIENT_TLS_CA"

// tlsClientConfig trusts the CA certificates in the PEM file caFile.
func tlsClientConfig(caFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-ca: %s holds no PEM certificate", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

package config

import "net"

// TLSOn reports whether a TLS listener is configured.
func (c *Config) TLSOn() bool {
	return c.AMQPSAddr != "" || c.KafkaTLSAddr != "" || c.HTTPSAddr != ""
}

// validateTLS checks the TLS listeners' settings: each address is off
// (empty) or host:port, and a listener that is on has a certificate and
// key, and a CA when client certificates are asked for.
func (c *Config) validateTLS(bad func(string, ...any)) {
	for _, a := range []struct{ name, v string }{
		{"amqps_addr", c.AMQPSAddr}, {"kafka_tls_addr", c.KafkaTLSAddr}, {"https_addr", c.HTTPSAddr},
	} {
		if a.v == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			bad("%s %q: want host:port (empty: off): %v", a.name, a.v, err)
		}
	}
	switch c.TLSClientAuth {
	case "", "none", "request", "require":
	default:
		bad("tls_client_auth %q: want none, request or require", c.TLSClientAuth)
	}
	if !c.TLSOn() {
		return
	}
	if c.TLSCert == "" || c.TLSKey == "" {
		bad("a TLS listener is on: tls_cert and tls_key are needed")
	}
	if c.TLSClientAuth != "" && c.TLSClientAuth != "none" && c.TLSCA == "" {
		bad("tls_client_auth %s needs tls_ca", c.TLSClientAuth)
	}
}

package server

import (
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/sluice-mq/sluice/internal/accept"
	"github.com/sluice-mq/sluice/internal/mgmt"
	"github.com/sluice-mq/sluice/internal/tlsconf"
)

// tlsListeners are the TLS listeners the configuration turns on, beside
// the plain ones: AMQPS, the Kafka TLS listener and HTTPS. Each is nil
// when off.
type tlsListeners struct {
	src                   *tlsconf.Source
	amqps, kafka, httpsLn net.Listener
	amqpsAddr, kafkaAddr  net.Addr
	httpsAddr             net.Addr
}

// openTLS loads the certificate files and binds the TLS listeners that
// are on; with none on it does nothing.
func (s *Server) openTLS() error {
	cfg := s.cfg
	if !cfg.TLSOn() {
		return nil
	}
	src, err := tlsconf.NewSource(tlsconf.Files{
		Cert: cfg.TLSCert, Key: cfg.TLSKey, CA: cfg.TLSCA, ClientAuth: cfg.TLSClientAuth,
	}, s.log)
	if err != nil {
		return err
	}
	s.tls.src = src
	bind := func(name, addr string, ln *net.Listener, bound *net.Addr) error {
		if addr == "" {
			return nil
		}
		raw, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s listener: %w", name, err)
		}
		*bound = raw.Addr()
		*ln = tlsconf.Listen(raw, src.Config(), name, s.log)
		return nil
	}
	if err := bind(tlsconf.ListenerAMQPS, cfg.AMQPSAddr, &s.tls.amqps, &s.tls.amqpsAddr); err != nil {
		return err
	}
	if err := bind(tlsconf.ListenerKafka, cfg.KafkaTLSAddr, &s.tls.kafka, &s.tls.kafkaAddr); err != nil {
		return err
	}
	if err := bind(tlsconf.ListenerHTTPS, cfg.HTTPSAddr, &s.tls.httpsLn, &s.tls.httpsAddr); err != nil {
		return err
	}
	s.log.Info("TLS listeners", "amqps", addrString(s.tls.amqpsAddr), "kafka_tls", addrString(s.tls.kafkaAddr),
		"kafka_tls_advertised", cfg.AdvertisedKafkaTLSAddr(), "https", addrString(s.tls.httpsAddr),
		"client_auth", cfg.TLSClientAuth)
	return nil
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// tlsMgmtListeners are the TLS listeners as the management API reports
// them, with RabbitMQ's protocol names ("amqp/ssl", "https").
func (s *Server) tlsMgmtListeners() []mgmt.Listener {
	var out []mgmt.Listener
	if s.tls.amqpsAddr != nil {
		out = append(out, mgmt.Listener{Protocol: "amqp/ssl", Addr: s.tls.amqpsAddr})
	}
	if s.tls.kafkaAddr != nil {
		out = append(out, mgmt.Listener{Protocol: "kafka/ssl", Addr: s.tls.kafkaAddr})
	}
	if s.tls.httpsAddr != nil {
		out = append(out, mgmt.Listener{Protocol: "https", Addr: s.tls.httpsAddr})
	}
	return out
}

// serveTLS starts serving the TLS listeners that are on. The front ends'
// Close (amqp, kafka) and the HTTP server's Shutdown close them.
func (s *Server) serveTLS() {
	if ln := s.tls.amqps; ln != nil {
		s.goServe("amqps", func() error { return s.amqp.Serve(ln) })
	}
	if ln := s.tls.kafka; ln != nil {
		s.goServe("kafka_tls", func() error { return s.kafka.ServeAdvertised(ln, s.cfg.AdvertisedKafkaTLSAddr()) })
	}
	if ln := s.tls.httpsLn; ln != nil {
		s.goServe("https", func() error {
			if err := s.http.Serve(accept.CountFailures(ln, "https")); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
}

// closeTLSUnserved closes the TLS listeners when Start failed before
// serving them.
func (s *Server) closeTLSUnserved() {
	for _, ln := range []net.Listener{s.tls.amqps, s.tls.kafka, s.tls.httpsLn} {
		if ln != nil {
			ln.Close()
		}
	}
}

// AMQPSAddr is the bound AMQPS listener address; nil when off.
func (s *Server) AMQPSAddr() net.Addr { return s.tls.amqpsAddr }

// KafkaTLSAddr is the bound Kafka TLS listener address; nil when off.
func (s *Server) KafkaTLSAddr() net.Addr { return s.tls.kafkaAddr }

// HTTPSAddr is the bound HTTPS listener address; nil when off.
func (s *Server) HTTPSAddr() net.Addr { return s.tls.httpsAddr }

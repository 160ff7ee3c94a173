package config

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/sluice-mq/sluice/internal/cluster"
	"github.com/sluice-mq/sluice/internal/tlsconf"
)

// ClusterOn reports whether cluster settings were given (node_id set).
func (c *Config) ClusterOn() bool { return c.NodeID != 0 }

// ClusterTLSOn reports whether node-to-node traffic goes over TLS: it does
// whenever a certificate is configured (tls_cert), with the listeners'
// certificate, key and CA. A cluster never mixes plain and TLS nodes, so
// there is no separate switch to get wrong on one node.
func (c *Config) ClusterTLSOn() bool { return c.TLSCert != "" }

// validateCluster checks the cluster settings without reading any file.
func (c *Config) validateCluster(bad func(string, ...any)) {
	if !c.ClusterOn() {
		for _, s := range []struct{ name, v string }{
			{"cluster_addr", c.ClusterAddr}, {"cluster_peers", c.ClusterPeers},
			{"cluster_id", c.ClusterID}, {"cluster_secret_file", c.ClusterSecretFile},
		} {
			if s.v != "" {
				bad("%s is set but node_id is not: a cluster node needs node_id", s.name)
			}
		}
		if c.ClusterJoin {
			bad("cluster_join is set but node_id is not: a cluster node needs node_id")
		}
		return
	}
	if c.ReplicaLagTimeMax <= 0 {
		bad("replica_lag_time_max %s: want a positive duration", c.ReplicaLagTimeMax)
	}
	if c.LeaderImbalanceCheck <= 0 {
		bad("leader_imbalance_check_interval %s: want a positive duration", c.LeaderImbalanceCheck)
	}
	if c.LeaderImbalancePct < 0 || c.LeaderImbalancePct > 100 {
		bad("leader_imbalance_per_broker_percentage %d: want 0 to 100", c.LeaderImbalancePct)
	}
	if c.NodeID < 0 || c.NodeID > 1<<31-1 {
		bad("node_id %d: want 1 to 2147483647 (it is also the Kafka broker id)", c.NodeID)
		return
	}
	peers, err := cluster.ParsePeers(c.ClusterPeers)
	if err != nil {
		bad("cluster_peers: %v", err)
		return
	}
	for id, addr := range peers {
		if h, p, err := net.SplitHostPort(addr); err != nil || h == "" || p == "" {
			bad("cluster_peers: node %d: address %q: want host:port", id, addr)
		}
	}
	if c.ClusterAddr != "" {
		if _, _, err := net.SplitHostPort(c.ClusterAddr); err != nil {
			bad("cluster_addr %q: want host:port: %v", c.ClusterAddr, err)
		}
	}
	cc := cluster.Config{NodeID: cluster.NodeID(c.NodeID), Peers: peers, ClusterID: c.ClusterID}
	if err := cc.Validate(); err != nil {
		bad("cluster settings: %v", err)
	}
	if c.ClusterJoin && len(peers) < 2 {
		bad("cluster_join: cluster_peers must list this node and at least one member of the running cluster")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("cluster: tls_cert and tls_key go together (node-to-node TLS uses both)")
	}
	mutualTLS := c.TLSCert != "" && c.TLSKey != "" && c.TLSCA != ""
	if c.ClusterSecretFile == "" && !mutualTLS {
		bad("cluster: nodes must authenticate each other: set cluster_secret_file, or tls_cert, tls_key and tls_ca (mutual TLS), or both")
	}
}

// Cluster builds this node's cluster.Config from the settings: the peers
// parsed, the secret read from cluster_secret_file, and, when
// ClusterTLSOn, the node-to-node TLS configurations. Call it after
// Validate; with node_id unset it returns the zero Config (not Enabled).
//
// TLS: the listeners' certificate and key serve both ends of a
// node-to-node connection, and are read again when their files change, as
// for the listeners. With tls_ca the accepting node requires a client
// certificate that chains to it (mutual TLS) and the dialling node
// verifies the accepting node's certificate against it; without tls_ca
// the dialling node verifies against the system's roots and the cluster
// secret authenticates. A node certificate therefore needs both the
// serverAuth and clientAuth extended key usages, and the host of every
// node's cluster address among its names (the transport sets ServerName
// from the address it dials).
func (c *Config) Cluster(log *slog.Logger) (cluster.Config, error) {
	if !c.ClusterOn() {
		return cluster.Config{}, nil
	}
	peers, err := cluster.ParsePeers(c.ClusterPeers)
	if err != nil {
		return cluster.Config{}, err
	}
	cc := cluster.Config{
		NodeID:    cluster.NodeID(c.NodeID),
		Addr:      c.ClusterAddr,
		Peers:     peers,
		ClusterID: c.ClusterID,
		Rack:      c.Rack,
		Join:      c.ClusterJoin,
	}
	if cc.Addr == "" {
		cc.Addr = peers[cc.NodeID]
	}
	if c.ClusterSecretFile != "" {
		b, err := os.ReadFile(c.ClusterSecretFile)
		if err != nil {
			return cluster.Config{}, fmt.Errorf("cluster_secret_file: %w", err)
		}
		cc.Secret = bytes.TrimSpace(b)
		if len(cc.Secret) == 0 {
			return cluster.Config{}, fmt.Errorf("cluster_secret_file %s is empty", c.ClusterSecretFile)
		}
	}
	if c.ClusterTLSOn() {
		if cc.ServerTLS, cc.ClientTLS, err = c.clusterTLS(log); err != nil {
			return cluster.Config{}, err
		}
	}
	return cc, cc.Validate()
}

// clusterTLS builds the accepting and dialling ends' TLS configurations
// from the certificate files (see Cluster).
func (c *Config) clusterTLS(log *slog.Logger) (server, client *tls.Config, err error) {
	auth := tlsconf.ClientAuthNone
	if c.TLSCA != "" {
		auth = tlsconf.ClientAuthRequire
	}
	src, err := tlsconf.NewSource(tlsconf.Files{Cert: c.TLSCert, Key: c.TLSKey, CA: c.TLSCA, ClientAuth: auth}, log)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster TLS: %w", err)
	}
	server = src.Config()
	// The source's configuration for a handshake is the current one (the
	// files read again if they changed); the dialling end takes its
	// certificate from there too, so a rotated certificate serves both.
	current := func() (*tls.Config, error) { return server.GetConfigForClient(nil) }
	cur, err := current()
	if err != nil {
		return nil, nil, fmt.Errorf("cluster TLS: %w", err)
	}
	client = &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    cur.ClientCAs, // nil without tls_ca: the system's roots
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cur, err := current()
			if err != nil {
				return nil, err
			}
			return &cur.Certificates[0], nil
		},
	}
	return server, client, nil
}

// unspecifiedHost is the host told to others for a listener bound to
// every interface (":9092", "0.0.0.0:9092"): 127.0.0.1 on a single node,
// as always; in a cluster the host of this node's entry in cluster_peers,
// which the other nodes, and so the clients, can reach.
func (c *Config) unspecifiedHost() string {
	if c.ClusterOn() {
		if peers, err := cluster.ParsePeers(c.ClusterPeers); err == nil {
			if h, _, err := net.SplitHostPort(peers[cluster.NodeID(c.NodeID)]); err == nil && !unspecified(h) {
				return h
			}
		}
	}
	return "127.0.0.1"
}

// NodeAddrs are the addresses a node registers in the registry of nodes
// (meta.Node has the same fields), as others must use them: advertised,
// never an unspecified host; "" for a listener that is off.
type NodeAddrs struct {
	ClusterAddr, KafkaAddr, KafkaTLSAddr, AMQPAddr, AMQPSAddr, HTTPAddr, HTTPSAddr string
}

// NodeAddrs returns this node's addresses for the registry of nodes. The
// cluster address is this node's entry in cluster_peers (what the others
// dial, whatever cluster_addr binds); the Kafka ones are the advertised
// addresses; the others are the listeners' with an unspecified host made
// the cluster address's host.
func (c *Config) NodeAddrs() NodeAddrs {
	host := c.unspecifiedHost()
	addr := func(a string) string {
		if a == "" {
			return ""
		}
		return advertised("", a, host)
	}
	var cl string
	if peers, err := cluster.ParsePeers(c.ClusterPeers); err == nil {
		cl = peers[cluster.NodeID(c.NodeID)]
	}
	n := NodeAddrs{
		ClusterAddr: cl, KafkaAddr: c.AdvertisedKafkaAddr(),
		AMQPAddr: addr(c.AMQPAddr), AMQPSAddr: addr(c.AMQPSAddr), HTTPAddr: addr(c.HTTPAddr), HTTPSAddr: addr(c.HTTPSAddr),
	}
	if c.KafkaTLSAddr != "" {
		n.KafkaTLSAddr = c.AdvertisedKafkaTLSAddr()
	}
	return n
}

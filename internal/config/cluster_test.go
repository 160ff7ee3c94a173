package config

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/tlsconf"
)

// clusterConfig is a default config with the given settings applied.
func clusterConfig(t *testing.T, set map[string]string) Config {
	t.Helper()
	c := Default()
	for k, v := range set {
		if err := c.Set(k, v); err != nil {
			t.Fatalf("%s=%s: %v", k, v, err)
		}
	}
	return c
}

func secretFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNoClusterSettingsIsASingleNode(t *testing.T) {
	c := Default()
	if c.ClusterOn() || c.ClusterTLSOn() {
		t.Fatal("cluster settings on by default")
	}
	cc, err := c.Cluster(nil)
	if err != nil || cc.Enabled() {
		t.Fatalf("Cluster() = %+v, %v; want a disabled config", cc, err)
	}
	// A rack alone is harmless: it is what Metadata tells clients.
	c.Rack = "r1"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestClusterSettingsFromFlagsEnvAndFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sluice.conf")
	os.WriteFile(path, []byte("node_id = 2\ncluster_peers = 1=127.0.0.1:9190,2=127.0.0.1:9191\nrack = from-file\n"), 0o644)
	c := Default()
	if err := c.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if err := c.LoadEnv([]string{"SLUICE_CLUSTER_ID=blue", "SLUICE_RACK=from-env"}); err != nil {
		t.Fatal(err)
	}
	if c.NodeID != 2 || c.ClusterID != "blue" || c.Rack != "from-env" || !strings.Contains(c.ClusterPeers, "2=127.0.0.1:9191") {
		t.Fatalf("settings %+v", c)
	}
	for _, key := range []string{"node_id", "cluster_addr", "cluster_peers", "cluster_id", "cluster_secret_file", "rack", "cluster_join"} {
		if FlagName(key) == "" || !contains(Keys(), key) {
			t.Errorf("%s is not a setting", key)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestClusterSettingsValidated(t *testing.T) {
	secret := secretFile(t, "s3cret\n")
	good := map[string]string{
		"node_id": "1", "cluster_peers": "1=127.0.0.1:9190,2=127.0.0.1:9191,3=127.0.0.1:9192",
		"cluster_id": "blue", "cluster_secret_file": secret,
	}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range good {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	for _, tc := range []struct {
		name string
		set  map[string]string
		want string // in the error; "" for valid settings
	}{
		{"peers without node id", map[string]string{"cluster_peers": "1=a:1"}, "node_id"},
		{"secret without node id", map[string]string{"cluster_secret_file": secret}, "node_id"},
		{"node id too large", with("node_id", "2147483648"), "node_id"},
		{"negative node id", with("node_id", "-3"), "node_id"},
		{"not among the peers", with("node_id", "4"), "not among the cluster peers"},
		{"no peers", with("cluster_peers", ""), "no cluster peers"},
		{"bad peer", with("cluster_peers", "1=127.0.0.1:9190,x=y"), "cluster_peers"},
		{"peer without port", with("cluster_peers", "1=127.0.0.1"), "want host:port"},
		{"no cluster id", with("cluster_id", ""), "cluster id is required"},
		{"bad cluster addr", with("cluster_addr", "nowhere"), "cluster_addr"},
		{"no authentication", with("cluster_secret_file", ""), "authenticate"},
		{"TLS without a CA is no authentication", with("cluster_secret_file", "", "tls_cert", "c", "tls_key", "k"), "authenticate"},
		{"cert without key", with("tls_cert", "c"), "tls_cert and tls_key"},
		{"join without node id", map[string]string{"cluster_join": "true"}, "node_id"},
		{"one peer, not joining", with("cluster_peers", "1=127.0.0.1:9190"), ""},
		{"join knowing no member", with("cluster_peers", "1=127.0.0.1:9190", "cluster_join", "true"), "at least one member"},
		{"good, joining", with("cluster_join", "true"), ""},
		{"good, with a secret", good, ""},
		{"good, with mutual TLS", with("cluster_secret_file", "", "tls_cert", "c", "tls_key", "k", "tls_ca", "ca"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clusterConfig(t, tc.set)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("valid settings refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one about %s", err, tc.want)
			}
		})
	}
}

func TestClusterConfigBuilt(t *testing.T) {
	c := clusterConfig(t, map[string]string{
		"node_id": "2", "cluster_peers": "1=127.0.0.1:9190, 2=127.0.0.1:9191,3=127.0.0.1:9192",
		"cluster_id": "blue", "cluster_secret_file": secretFile(t, "  s3cret \n"), "rack": "eu-1a",
	})
	cc, err := c.Cluster(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cc.NodeID != 2 || cc.Addr != "127.0.0.1:9191" || len(cc.Peers) != 3 || cc.ClusterID != "blue" ||
		string(cc.Secret) != "s3cret" || cc.Rack != "eu-1a" || cc.ServerTLS != nil || cc.ClientTLS != nil {
		t.Fatalf("cluster config %+v", cc)
	}
	c.ClusterAddr = "0.0.0.0:9191"
	if cc, _ = c.Cluster(nil); cc.Addr != "0.0.0.0:9191" {
		t.Fatalf("cluster_addr not used: %q", cc.Addr)
	}
	c.ClusterSecretFile = secretFile(t, "\n")
	if _, err := c.Cluster(nil); err == nil {
		t.Fatal("an empty secret file accepted")
	}
	c.ClusterSecretFile = filepath.Join(t.TempDir(), "missing")
	if _, err := c.Cluster(nil); err == nil {
		t.Fatal("a missing secret file accepted")
	}
}

// TestClusterMutualTLS builds the node-to-node TLS configurations from
// development certificates and runs a handshake between them over
// loopback: the dialling node presents its certificate and verifies the
// other's, and a client without a certificate is refused.
func TestClusterMutualTLS(t *testing.T) {
	dir := t.TempDir()
	if err := tlsconf.DevCerts(dir, tlsconf.DevOptions{}); err != nil {
		t.Fatal(err)
	}
	c := clusterConfig(t, map[string]string{
		"node_id": "1", "cluster_peers": "1=127.0.0.1:9190", "cluster_id": "blue",
		"tls_cert": filepath.Join(dir, tlsconf.DevServerCert), "tls_key": filepath.Join(dir, tlsconf.DevServerKey),
		"tls_ca": filepath.Join(dir, tlsconf.DevCACert),
	})
	if !c.ClusterTLSOn() {
		t.Fatal("cluster TLS off with a certificate")
	}
	cc, err := c.Cluster(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cc.ServerTLS == nil || cc.ClientTLS == nil {
		t.Fatal("no TLS configurations")
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cc.ServerTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peerCerts := make(chan int, 2)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			tc := nc.(*tls.Conn)
			if tc.Handshake() == nil {
				peerCerts <- len(tc.ConnectionState().PeerCertificates)
			} else {
				peerCerts <- -1
			}
			nc.Close()
		}
	}()
	client := cc.ClientTLS.Clone()
	client.ServerName = "127.0.0.1"
	nc, err := tls.Dial("tcp", ln.Addr().String(), client)
	if err != nil {
		t.Fatalf("node-to-node handshake: %v", err)
	}
	nc.Close()
	if n := <-peerCerts; n != 1 {
		t.Fatalf("accepting node saw %d client certificates, want 1", n)
	}
	// Without a client certificate: refused by the accepting node.
	anon := &tls.Config{RootCAs: client.RootCAs, ServerName: "127.0.0.1"}
	if nc, err := tls.Dial("tcp", ln.Addr().String(), anon); err == nil {
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		nc.Read(make([]byte, 1)) // TLS 1.3: the refusal arrives after the handshake
		nc.Close()
	}
	if n := <-peerCerts; n != -1 {
		t.Fatalf("a node without a certificate was accepted (%d certificates)", n)
	}
}

// A listener bound to every interface is advertised at 127.0.0.1 on a
// single node, as always, and at the host of the node's cluster address
// in a cluster, which the other nodes and the clients can reach.
func TestNodeAddrs(t *testing.T) {
	c := clusterConfig(t, map[string]string{"amqps_addr": "0.0.0.0:5671"})
	if got := c.AdvertisedKafkaAddr(); got != "127.0.0.1:9092" {
		t.Fatalf("single node: kafka advertised %s", got)
	}
	c = clusterConfig(t, map[string]string{
		"node_id": "2", "cluster_peers": "1=10.0.0.1:9190,2=10.0.0.2:9190", "cluster_addr": "0.0.0.0:9190",
		"amqps_addr": "0.0.0.0:5671", "kafka_tls_addr": ":9093", "kafka_tls_advertised_addr": "k2.example:19093",
		"http_addr": "192.168.1.2:15672",
	})
	want := NodeAddrs{
		ClusterAddr: "10.0.0.2:9190", KafkaAddr: "10.0.0.2:9092", KafkaTLSAddr: "k2.example:19093",
		AMQPAddr: "10.0.0.2:5672", AMQPSAddr: "10.0.0.2:5671", HTTPAddr: "192.168.1.2:15672",
	}
	if got := c.NodeAddrs(); got != want {
		t.Fatalf("node addresses\n got %+v\nwant %+v", got, want)
	}
}

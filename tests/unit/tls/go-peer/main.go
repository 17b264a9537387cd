// Go crypto/tls peer for the TLS tests: configured the way upstream
// cloud-api-adaptor configures its two ends (tlsutil: RootCAs and
// ClientCAs from the CA, RequireAndVerifyClientCert, TLS 1.2 minimum,
// ServerName for the client), so our daemon and forwarder are checked
// against the TLS stack upstream pod VM images and daemons run.
//
//	go-peer server <cert> <key> <client-ca> [min]  prints "PORT <n>", serves one connection
//	go-peer client <port> <server-name> <ca> <cert> <key> [min]
//	go-peer gencert <dir> <instance-name>
//
// gencert writes material made the way upstream's daemon makes it with Go's
// crypto/x509 (facts from its documentation, not its code): client.crt/.key, a
// self-signed ECDSA P-256 client certificate (O cloud-api-adaptor, clientAuth,
// digitalSignature|certSign, not a CA, PKCS#8 key); ca.crt, a CA
// (O agent-protocol-forwarder); server.crt/.key issued by it for the
// instance name (CN and DNS SAN).
//
// One connection: the client sends a line, the server answers it reversed,
// both close. Errors go to stderr with exit status 1.
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

func pool(path string) *x509.CertPool {
	pem, err := os.ReadFile(path)
	if err != nil {
		fail(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		fail(fmt.Errorf("no certificate in %s", path))
	}
	return p
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "go-peer:", err)
	os.Exit(1)
}

func minVersion(args []string) uint16 {
	if len(args) > 0 && args[0] == "VersionTLS13" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

func server(args []string) {
	cert, err := tls.LoadX509KeyPair(args[0], args[1])
	if err != nil {
		fail(err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool(args[2]),
		RootCAs:      pool(args[2]),
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   minVersion(args[3:]),
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		fail(err)
	}
	fmt.Printf("PORT %d\n", l.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	c, err := l.Accept()
	if err != nil {
		fail(err)
	}
	defer c.Close()
	tc := c.(*tls.Conn)
	if err := tc.Handshake(); err != nil {
		fail(err)
	}
	line, err := bufio.NewReader(tc).ReadString('\n')
	if err != nil {
		fail(err)
	}
	st := tc.ConnectionState()
	fmt.Printf("PEER %s\n", st.PeerCertificates[0].Subject)
	if _, err := tc.Write([]byte(reverse(line[:len(line)-1]) + "\n")); err != nil {
		fail(err)
	}
}

func client(args []string) {
	cert, err := tls.LoadX509KeyPair(args[3], args[4])
	if err != nil {
		fail(err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool(args[2]),
		ClientCAs:    pool(args[2]),
		ServerName:   args[1],
		MinVersion:   minVersion(args[5:]),
	}
	c, err := tls.Dial("tcp", "127.0.0.1:"+args[0], cfg)
	if err != nil {
		fail(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello from go\n")); err != nil {
		fail(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fail(err)
	}
	fmt.Printf("REPLY %s", line)
	fmt.Printf("VERSION %x\n", c.ConnectionState().Version)
}

func writePEM(path, typ string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		fail(err)
	}
}

func newKey(dir, name string) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fail(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		fail(err)
	}
	writePEM(filepath.Join(dir, name), "PRIVATE KEY", der)
	return key
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		fail(err)
	}
	return n
}

func create(dir, name string, tmpl, parent *x509.Certificate, pub, signer interface{}) *x509.Certificate {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		fail(err)
	}
	writePEM(filepath.Join(dir, name), "CERTIFICATE", der)
	c, err := x509.ParseCertificate(der)
	if err != nil {
		fail(err)
	}
	return c
}

func gencert(dir, instance string) {
	notBefore := time.Now().Add(-5 * time.Minute)
	notAfter := notBefore.Add(2 * 365 * 24 * time.Hour)

	ckey := newKey(dir, "client.key")
	client := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"cloud-api-adaptor"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
	}
	create(dir, "client.crt", client, client, &ckey.PublicKey, ckey)

	cakey := newKey(dir, "ca.key")
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"agent-protocol-forwarder"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	ca := create(dir, "ca.crt", caTmpl, caTmpl, &cakey.PublicKey, cakey)

	skey := newKey(dir, "server.key")
	server := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"agent-protocol-forwarder"}, CommonName: instance},
		DNSNames:     []string{instance},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	create(dir, "server.crt", server, ca, &skey.PublicKey, cakey)
}

func main() {
	if len(os.Args) == 4 && os.Args[1] == "gencert" {
		gencert(os.Args[2], os.Args[3])
		return
	}
	if len(os.Args) >= 5 && os.Args[1] == "server" {
		server(os.Args[2:])
	} else if len(os.Args) >= 7 && os.Args[1] == "client" {
		client(os.Args[2:])
	} else {
		fmt.Fprintln(os.Stderr, "usage: go-peer server|client ...")
		os.Exit(2)
	}
}

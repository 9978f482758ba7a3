// Package certs manages qftpd's server certificate and the client's trust
// decisions about servers: CA verification when possible, otherwise
// trust-on-first-use pinning of certificate fingerprints in a known_hosts
// file, in the style of OpenSSH.
package certs

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names used by LoadOrCreate inside its directory.
const (
	certFileName = "server.crt"
	keyFileName  = "server.key"
)

// Parameters of the generated self-signed certificate.
const (
	generatedCommonName = "qftpd"
	generatedValidYears = 10
	// generatedBackdate tolerates clients whose clocks are slightly behind.
	generatedBackdate = time.Hour
)

// LoadOrCreate returns the server certificate kept in dir as server.crt and
// server.key (both PEM).
//
// If neither file exists, it creates dir (0o700) if needed, generates an
// Ed25519 key and a self-signed certificate for "localhost", the machine's
// host name, 127.0.0.1 and ::1 (CN "qftpd", valid for 10 years, server auth
// only), writes the key with mode 0o600 and the certificate with mode 0o644,
// and reports created = true. Both files are written to temporary files in dir
// and renamed into place, so a crash cannot leave a truncated key.
//
// If exactly one of the two files exists, LoadOrCreate returns an error rather
// than replacing it: a lone key or certificate usually means a botched
// restore, and silently generating a new identity would make every client
// report a changed host key.
//
// LoadOrCreate does not guard against two processes creating the pair in the
// same dir at the same time.
func LoadOrCreate(dir string) (cert tls.Certificate, leaf *x509.Certificate, created bool, err error) {
	certPath := filepath.Join(dir, certFileName)
	keyPath := filepath.Join(dir, keyFileName)

	certExists, err := exists(certPath)
	if err != nil {
		return tls.Certificate{}, nil, false, err
	}
	keyExists, err := exists(keyPath)
	if err != nil {
		return tls.Certificate{}, nil, false, err
	}

	switch {
	case certExists && keyExists:
		cert, leaf, err = Load(certPath, keyPath)
		return cert, leaf, false, err
	case certExists:
		return tls.Certificate{}, nil, false, fmt.Errorf("found %s but not %s: restore the key, or remove the certificate to generate a new pair", certPath, keyPath)
	case keyExists:
		return tls.Certificate{}, nil, false, fmt.Errorf("found %s but not %s: restore the certificate, or remove the key to generate a new pair", keyPath, certPath)
	}

	certPEM, keyPEM, err := generate()
	if err != nil {
		return tls.Certificate{}, nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, nil, false, fmt.Errorf("create certificate dir: %w", err)
	}
	// Key first: if we crash between the two renames, the next start reports
	// the lone key instead of serving a certificate without its key.
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, nil, false, fmt.Errorf("save key: %w", err)
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, nil, false, fmt.Errorf("save certificate: %w", err)
	}

	cert, leaf, err = parsePair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, nil, false, fmt.Errorf("parse generated certificate: %w", err)
	}
	return cert, leaf, true, nil
}

// Load reads a PEM certificate file and a PEM private key file. The
// certificate file may hold a chain, leaf first; the key may be of any type
// crypto/tls supports (Ed25519, ECDSA, RSA; PKCS #8, SEC 1 or PKCS #1). It
// returns the pair and the parsed leaf certificate.
func Load(certFile, keyFile string) (tls.Certificate, *x509.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("load certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("load key: %w", err)
	}
	cert, leaf, err := parsePair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("load %s and %s: %w", certFile, keyFile, err)
	}
	return cert, leaf, nil
}

// LoadLeaf reads the first certificate of a PEM file, for printing its
// fingerprint without needing the key.
func LoadLeaf(certFile string) (*x509.Certificate, error) {
	data, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("load certificate: %w", err)
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("load certificate %s: no CERTIFICATE block", certFile)
		}
		if block.Type == "CERTIFICATE" {
			leaf, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("load certificate %s: %w", certFile, err)
			}
			return leaf, nil
		}
	}
}

// parsePair parses a PEM certificate chain and key and returns the pair with
// its parsed leaf.
func parsePair(certPEM, keyPEM []byte) (tls.Certificate, *x509.Certificate, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	// X509KeyPair fills Leaf unless GODEBUG=x509keypairleaf=0.
	leaf := cert.Leaf
	if leaf == nil {
		leaf, err = x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return tls.Certificate{}, nil, err
		}
		cert.Leaf = leaf
	}
	return cert, leaf, nil
}

// generate creates an Ed25519 key and a self-signed server certificate and
// returns both PEM encoded.
func generate() (certPEM, keyPEM []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, fmt.Errorf("generate serial: %w", err)
	}

	notBefore := time.Now().Add(-generatedBackdate)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: generatedCommonName},
		NotBefore:             notBefore,
		NotAfter:              notBefore.AddDate(generatedValidYears, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	addHostname(tmpl)

	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}

// addHostname adds os.Hostname() to tmpl's SANs when it is usable: a host
// name that is an IP literal goes into IPAddresses, one that cannot be a DNS
// SAN is skipped rather than failing certificate creation.
func addHostname(tmpl *x509.Certificate) {
	name, err := os.Hostname()
	if err != nil {
		return
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if name == "" || name == "localhost" {
		return
	}
	if ip := net.ParseIP(name); ip != nil {
		for _, have := range tmpl.IPAddresses {
			if have.Equal(ip) {
				return
			}
		}
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		return
	}
	for _, r := range name {
		// x509 requires IA5 (ASCII) SANs; spaces and controls make no sense in a host name.
		if r <= ' ' || r >= 0x7f {
			return
		}
	}
	tmpl.DNSNames = append(tmpl.DNSNames, name)
}

// randomSerial returns a random positive serial number of at most 128 bits.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, err
		}
		// RFC 5280 requires a positive serial; zero is astronomically unlikely but invalid.
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// exists reports whether path exists. Errors other than "not exist" (such as
// permission denied) are returned so they are not mistaken for absence.
func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, err
	}
}

// writeFileAtomic writes data to a temporary file in path's directory, syncs
// it, sets perm and renames it over path, so readers see either no file or the
// complete file. The temporary file is removed on any error.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	// CreateTemp opens with 0o600, so a key is never readable by others, even briefly.
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()

	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename in dir durable where the platform allows it.
// Failure is ignored: some platforms and file systems cannot sync directories,
// and the data itself is already synced.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

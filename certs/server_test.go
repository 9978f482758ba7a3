package certs_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/qftp/qftp/certs"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestLoadOrCreate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// setup prepares dir (which does not exist yet) and returns the
		// fingerprint LoadOrCreate must return, or "" if any will do.
		setup       func(t *testing.T, dir string) string
		wantCreated bool
		wantErr     string
	}{
		{
			name:        "missing dir",
			setup:       func(*testing.T, string) string { return "" },
			wantCreated: true,
		},
		{
			name: "empty dir",
			setup: func(t *testing.T, dir string) string {
				mustMkdir(t, dir)
				return ""
			},
			wantCreated: true,
		},
		{
			name: "reload keeps key",
			setup: func(t *testing.T, dir string) string {
				_, leaf, created, err := certs.LoadOrCreate(dir)
				if err != nil || !created {
					t.Fatalf("first LoadOrCreate: created=%v err=%v", created, err)
				}
				return certs.Fingerprint(leaf)
			},
			wantCreated: false,
		},
		{
			name: "only cert",
			setup: func(t *testing.T, dir string) string {
				createPair(t, dir)
				mustRemove(t, filepath.Join(dir, "server.key"))
				return ""
			},
			wantErr: "server.key",
		},
		{
			name: "only key",
			setup: func(t *testing.T, dir string) string {
				createPair(t, dir)
				mustRemove(t, filepath.Join(dir, "server.crt"))
				return ""
			},
			wantErr: "server.crt",
		},
		{
			name: "garbage cert",
			setup: func(t *testing.T, dir string) string {
				createPair(t, dir)
				mustWrite(t, filepath.Join(dir, "server.crt"), "not a certificate\n", 0o644)
				return ""
			},
			wantErr: "server.crt",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "state")
			wantFP := tt.setup(t, dir)

			cert, leaf, created, err := certs.LoadOrCreate(dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("LoadOrCreate err = %v, want error mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadOrCreate: %v", err)
			}
			if created != tt.wantCreated {
				t.Errorf("created = %v, want %v", created, tt.wantCreated)
			}
			if leaf == nil || cert.Leaf != leaf || len(cert.Certificate) != 1 || cert.PrivateKey == nil {
				t.Fatalf("incomplete result: leaf=%v cert=%+v", leaf != nil, cert)
			}
			if wantFP != "" && certs.Fingerprint(leaf) != wantFP {
				t.Errorf("fingerprint = %s, want %s (key was regenerated)", certs.Fingerprint(leaf), wantFP)
			}
			assertMode(t, filepath.Join(dir, "server.key"), 0o600)
			assertMode(t, filepath.Join(dir, "server.crt"), 0o644)
		})
	}
}

func TestLoadOrCreateGenerated(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "b")
	before := time.Now()
	cert, leaf, created, err := certs.LoadOrCreate(dir)
	if err != nil || !created {
		t.Fatalf("LoadOrCreate: created=%v err=%v", created, err)
	}

	if _, ok := cert.PrivateKey.(ed25519.PrivateKey); !ok {
		t.Errorf("private key is %T, want ed25519.PrivateKey", cert.PrivateKey)
	}
	if leaf.Subject.CommonName != "qftpd" {
		t.Errorf("CN = %q, want qftpd", leaf.Subject.CommonName)
	}
	if !slices.Contains(leaf.DNSNames, "localhost") {
		t.Errorf("DNSNames = %v, want localhost", leaf.DNSNames)
	}
	if host, err := os.Hostname(); err == nil && net.ParseIP(host) == nil && host != "" {
		if !slices.Contains(leaf.DNSNames, strings.ToLower(strings.TrimSuffix(host, "."))) {
			t.Errorf("DNSNames = %v, want host name %q", leaf.DNSNames, host)
		}
	}
	for _, ip := range []string{"127.0.0.1", "::1"} {
		if !slices.ContainsFunc(leaf.IPAddresses, func(a net.IP) bool { return a.Equal(net.ParseIP(ip)) }) {
			t.Errorf("IPAddresses = %v, want %s", leaf.IPAddresses, ip)
		}
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("KeyUsage = %v, want DigitalSignature", leaf.KeyUsage)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("ExtKeyUsage = %v, want [ServerAuth]", leaf.ExtKeyUsage)
	}
	if leaf.SerialNumber.Sign() <= 0 || leaf.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %v not a positive 128-bit number", leaf.SerialNumber)
	}
	if d := before.Add(-time.Hour).Sub(leaf.NotBefore); d < -time.Minute || d > time.Minute {
		t.Errorf("NotBefore = %v, want about now-1h", leaf.NotBefore)
	}
	if want := leaf.NotBefore.AddDate(10, 0, 0); !leaf.NotAfter.Equal(want) {
		t.Errorf("NotAfter = %v, want %v", leaf.NotAfter, want)
	}
	if err := leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}

	assertMode(t, dir, fs.ModeDir|0o700)
	assertMode(t, filepath.Join(dir, "server.key"), 0o600)
	assertMode(t, filepath.Join(dir, "server.crt"), 0o644)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"server.crt", "server.key"}) {
		t.Errorf("dir holds %v, want only server.crt and server.key (temp files left?)", names)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	caCert, caKey := newCA(t, "Test CA")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edDir := t.TempDir()
	createPair(t, edDir)

	rsaLeaf := issue(t, caCert, caKey, rsaKey.Public(), leafTemplate("localhost"))
	ecLeaf := issue(t, caCert, caKey, ecKey.Public(), leafTemplate("localhost"))

	tests := []struct {
		name      string
		certPEM   string
		keyPEM    string
		certFile  string // overrides certPEM
		keyFile   string // overrides keyPEM
		wantChain int
		wantLeaf  *x509.Certificate
		wantErr   string
	}{
		{
			name:      "ed25519 generated",
			certFile:  filepath.Join(edDir, "server.crt"),
			keyFile:   filepath.Join(edDir, "server.key"),
			wantChain: 1,
		},
		{
			name:      "rsa pkcs1 with chain",
			certPEM:   certPEM(rsaLeaf, caCert),
			keyPEM:    string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})),
			wantChain: 2,
			wantLeaf:  rsaLeaf,
		},
		{
			name:      "ecdsa sec1 with chain",
			certPEM:   certPEM(ecLeaf, caCert),
			keyPEM:    ecPEM(t, ecKey),
			wantChain: 2,
			wantLeaf:  ecLeaf,
		},
		{
			name:      "ecdsa pkcs8",
			certPEM:   certPEM(ecLeaf),
			keyPEM:    pkcs8PEM(t, ecKey),
			wantChain: 1,
			wantLeaf:  ecLeaf,
		},
		{
			name:    "key does not match",
			certPEM: certPEM(ecLeaf),
			keyPEM:  ecPEM(t, otherKey),
			wantErr: "does not match",
		},
		{
			name:    "missing key file",
			certPEM: certPEM(ecLeaf),
			keyFile: filepath.Join(t.TempDir(), "nope.key"),
			wantErr: "nope.key",
		},
		{
			name:    "not pem",
			certPEM: "hello\n",
			keyPEM:  ecPEM(t, ecKey),
			wantErr: "cert.pem",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			certFile, keyFile := tt.certFile, tt.keyFile
			if certFile == "" {
				certFile = filepath.Join(dir, "cert.pem")
				mustWrite(t, certFile, tt.certPEM, 0o644)
			}
			if keyFile == "" {
				keyFile = filepath.Join(dir, "key.pem")
				mustWrite(t, keyFile, tt.keyPEM, 0o600)
			}

			cert, leaf, err := certs.Load(certFile, keyFile)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load err = %v, want error mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if len(cert.Certificate) != tt.wantChain {
				t.Errorf("chain length = %d, want %d", len(cert.Certificate), tt.wantChain)
			}
			if leaf == nil || cert.Leaf != leaf {
				t.Fatalf("leaf not returned or not set in cert")
			}
			if tt.wantLeaf != nil && !leaf.Equal(tt.wantLeaf) {
				t.Errorf("leaf is not the first certificate in the file")
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	caCert, caKey := newCA(t, "Test CA")
	key1, _ := mustECDSA(t)
	key2, _ := mustECDSA(t)
	cert1 := issue(t, caCert, caKey, key1.Public(), leafTemplate("a.example"))
	cert1b := issue(t, caCert, caKey, key1.Public(), leafTemplate("b.example")) // same key, new cert
	cert2 := issue(t, caCert, caKey, key2.Public(), leafTemplate("a.example"))

	format := regexp.MustCompile(`^SHA256:[A-Za-z0-9+/]{43}$`)
	sum := sha256.Sum256(cert1.RawSubjectPublicKeyInfo)
	manual := "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])

	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{name: "matches manual SPKI hash", a: certs.Fingerprint(cert1), b: manual, same: true},
		{name: "same key renewed", a: certs.Fingerprint(cert1), b: certs.Fingerprint(cert1b), same: true},
		{name: "different keys", a: certs.Fingerprint(cert1), b: certs.Fingerprint(cert2), same: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, fp := range []string{tt.a, tt.b} {
				if !format.MatchString(fp) || len(fp) != 50 {
					t.Errorf("fingerprint %q does not match %v", fp, format)
				}
				if got, err := certs.ParseFingerprint(fp); err != nil || got != fp {
					t.Errorf("ParseFingerprint(%q) = %q, %v; want it unchanged", fp, got, err)
				}
			}
			if (tt.a == tt.b) != tt.same {
				t.Errorf("%s vs %s: same = %v, want %v", tt.a, tt.b, tt.a == tt.b, tt.same)
			}
		})
	}
}

func TestParseFingerprint(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte("x"))
	canon := "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
	body := canon[len("SHA256:"):]
	// Flip the last character to one whose unused low bits are set.
	nonCanon := canon[:len(canon)-1] + string(nonCanonicalLast(body[len(body)-1]))
	// 32 bytes of 0xff encode as 42 "/" and "8": exercises the +/ alphabet.
	slashes := "SHA256:" + strings.Repeat("/", 42) + "8"

	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{name: "canonical", in: canon, want: canon},
		{name: "padded", in: canon + "=", want: canon},
		{name: "lowercase prefix", in: "sha256:" + body, want: canon},
		{name: "surrounding space", in: "  " + canon + "\n", want: canon},
		{name: "empty", in: "", wantErr: true},
		{name: "no prefix", in: body, wantErr: true},
		{name: "md5 prefix", in: "MD5:" + body, wantErr: true},
		{name: "too short", in: canon[:len(canon)-1], wantErr: true},
		{name: "too long", in: canon + "A", wantErr: true},
		{name: "double padding", in: canon + "==", wantErr: true},
		{name: "all slashes", in: slashes, want: slashes},
		{name: "url alphabet", in: strings.ReplaceAll(slashes, "/", "_"), wantErr: true},
		{name: "bad character", in: canon[:20] + "!" + canon[21:], wantErr: true},
		{name: "embedded newline", in: canon[:20] + "\n" + canon[20:], wantErr: true},
		{name: "non-canonical bits", in: nonCanon, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := certs.ParseFingerprint(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseFingerprint(%q) = %q, want error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFingerprint(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseFingerprint(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// nonCanonicalLast returns a base64 character that decodes to the same
// leading bits as c but has a low bit set (c is the 43rd character of a
// 32-byte encoding, so only its top 4 bits are used).
func nonCanonicalLast(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := strings.IndexByte(alphabet, c)
	return alphabet[i|1]
}

// createPair runs LoadOrCreate in dir and fails the test unless it generated.
func createPair(t *testing.T, dir string) {
	t.Helper()
	if _, _, created, err := certs.LoadOrCreate(dir); err != nil || !created {
		t.Fatalf("LoadOrCreate(%s): created=%v err=%v", dir, created, err)
	}
}

// newCA returns a self-signed ECDSA CA certificate and its key.
func newCA(t *testing.T, cn string) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key, _ := mustECDSA(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	return issue(t, tmpl, key, key.Public(), tmpl), key
}

// newIntermediate returns an intermediate CA issued by parent.
func newIntermediate(t *testing.T, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key, _ := mustECDSA(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               pkix.Name{CommonName: "Test Intermediate"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	return issue(t, parent, parentKey, key.Public(), tmpl), key
}

// leafTemplate returns a server certificate template for dnsName and 127.0.0.1.
func leafTemplate(dnsName string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: dnsName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{dnsName},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
}

// issue signs tmpl for pub with parent/parentKey and parses the result.
func issue(t *testing.T, parent *x509.Certificate, parentKey crypto.Signer, pub crypto.PublicKey, tmpl *x509.Certificate) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustECDSA(t *testing.T) (*ecdsa.PrivateKey, crypto.PublicKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k, k.Public()
}

func certPEM(chain ...*x509.Certificate) string {
	var b strings.Builder
	for _, c := range chain {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return b.String()
}

func ecPEM(t *testing.T, k *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
}

func pkcs8PEM(t *testing.T, k crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func assertMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode(); got != want {
		t.Errorf("%s mode = %v, want %v", path, got, want)
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, path, data string, perm fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), perm); err != nil {
		t.Fatal(err)
	}
}

func mustRemove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
}

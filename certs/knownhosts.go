package certs

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"unicode"
)

// fingerprintPrefix names the hash, as in OpenSSH's "SHA256:…" fingerprints.
const fingerprintPrefix = "SHA256:"

// Fingerprint returns the fingerprint of cert's public key: "SHA256:"
// followed by the unpadded standard base64 encoding of the SHA-256 hash of
// the DER SubjectPublicKeyInfo, like OpenSSH. It depends only on the key, so
// a certificate renewed with the same key keeps its fingerprint. cert must
// not be nil.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return fingerprintPrefix + base64.RawStdEncoding.EncodeToString(sum[:])
}

// ParseFingerprint validates a fingerprint given by a user or read from a
// file and returns it in the canonical form produced by Fingerprint. It
// accepts "SHA256:" (in any letter case) followed by 43 characters of
// standard base64 that decode to 32 bytes, optionally with one trailing "="
// of padding, and surrounding white space.
func ParseFingerprint(s string) (string, error) {
	t := strings.TrimSpace(s)
	if len(t) < len(fingerprintPrefix) || !strings.EqualFold(t[:len(fingerprintPrefix)], fingerprintPrefix) {
		return "", fmt.Errorf("invalid fingerprint %q: want %s followed by 43 base64 characters", s, fingerprintPrefix)
	}
	b64 := strings.TrimSuffix(t[len(fingerprintPrefix):], "=")
	// Strict rejects non-zero padding bits, so each hash has exactly one
	// spelling; the length check rules out the newlines the decoder would skip.
	raw, err := base64.RawStdEncoding.Strict().DecodeString(b64)
	if err != nil || len(b64) != base64.RawStdEncoding.EncodedLen(sha256.Size) || len(raw) != sha256.Size {
		return "", fmt.Errorf("invalid fingerprint %q: want %s followed by 43 base64 characters", s, fingerprintPrefix)
	}
	return fingerprintPrefix + base64.RawStdEncoding.EncodeToString(raw), nil
}

// HostKey returns the key under which a server is pinned: "host:port", with
// IPv6 addresses in brackets ("example.com:7443", "[::1]:7443"). host may be
// given with or without brackets. Names are lowercased and lose a trailing
// dot; IP addresses are written in canonical form, IPv4-mapped IPv6
// addresses as IPv4, so that different spellings of one server share a pin.
func HostKey(host string, port int) string {
	h := host
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	if addr, err := netip.ParseAddr(h); err == nil {
		h = addr.Unmap().String()
	} else {
		h = strings.ToLower(strings.TrimSuffix(h, "."))
	}
	return net.JoinHostPort(h, strconv.Itoa(port))
}

// normalizeHostKey validates a "host:port" key and returns it as HostKey
// would write it.
func normalizeHostKey(s string) (string, error) {
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("invalid host key: %w", err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return "", fmt.Errorf("invalid host key %q: bad port", s)
	}
	// Such characters would break the line format or start a comment.
	if host == "" || strings.ContainsFunc(host, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == '#'
	}) {
		return "", fmt.Errorf("invalid host key %q: bad host", s)
	}
	return HostKey(host, int(port)), nil
}

// KnownHosts is a file of pinned server fingerprints with one
// "HOST FINGERPRINT" entry per line, where HOST is "host:port" as written by
// HostKey and FINGERPRINT is as written by Fingerprint. Lines starting with
// "#" and blank lines are ignored; Add only appends, so they are preserved.
//
// The file is read on every Lookup, so edits by the user or by other
// processes are seen without reopening. A KnownHosts is safe for concurrent
// use within a process; use one per file. Each Add is a single append write,
// so entries appended by other processes at the same time do not interleave,
// but there is no locking between processes.
type KnownHosts struct {
	path string
	mu   sync.RWMutex // keeps Lookup from reading a line that Add is half-way through
}

// OpenKnownHosts returns the KnownHosts stored at path. It does not touch the
// file system: a missing file reads as empty and is created by the first Add.
func OpenKnownHosts(path string) *KnownHosts {
	return &KnownHosts{path: path}
}

// Path returns the file name given to OpenKnownHosts.
func (k *KnownHosts) Path() string {
	return k.path
}

// Lookup returns the fingerprint pinned for hostKey and its 1-based line
// number; ok is false if the host has no entry. If a host has several
// entries, the first one counts. hostKey is normalized as by HostKey, and so
// are the hosts in the file.
//
// Any malformed line makes Lookup fail with an error naming file:line, even
// if the line is not about hostKey: a damaged file could hide a pin, so it is
// not trusted until fixed.
func (k *KnownHosts) Lookup(hostKey string) (fp string, line int, ok bool, err error) {
	want, err := normalizeHostKey(hostKey)
	if err != nil {
		return "", 0, false, err
	}

	k.mu.RLock()
	data, err := os.ReadFile(k.path)
	k.mu.RUnlock()
	if errors.Is(err, fs.ErrNotExist) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, fmt.Errorf("read known hosts: %w", err)
	}

	for i, raw := range strings.Split(string(data), "\n") {
		host, pin, skip, err := parseKnownHostsLine(raw)
		if err != nil {
			return "", 0, false, fmt.Errorf("%s:%d: %w", k.path, i+1, err)
		}
		if skip || ok || host != want {
			continue
		}
		fp, line, ok = pin, i+1, true
	}
	return fp, line, ok, nil
}

// parseKnownHostsLine parses one line of a known hosts file. skip reports a
// blank or comment line.
func parseKnownHostsLine(raw string) (host, fp string, skip bool, err error) {
	// Tolerate files edited on Windows.
	text := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
	if text == "" || strings.HasPrefix(text, "#") {
		return "", "", true, nil
	}
	fields := strings.Fields(text)
	if len(fields) != 2 {
		return "", "", false, fmt.Errorf("malformed entry: want \"HOST:PORT SHA256:FINGERPRINT\", got %d fields", len(fields))
	}
	host, err = normalizeHostKey(fields[0])
	if err != nil {
		return "", "", false, fmt.Errorf("malformed entry: %w", err)
	}
	fp, err = ParseFingerprint(fields[1])
	if err != nil {
		return "", "", false, fmt.Errorf("malformed entry: %w", err)
	}
	return host, fp, false, nil
}

// Add appends an entry pinning fp for hostKey. It creates the file's parent
// directory (mode 0o700) and the file (mode 0o600) if needed. Add does not
// check for an existing entry; callers look up first.
func (k *KnownHosts) Add(hostKey, fp string) error {
	host, err := normalizeHostKey(hostKey)
	if err != nil {
		return err
	}
	fp, err = ParseFingerprint(fp)
	if err != nil {
		return err
	}

	k.mu.Lock()
	defer k.mu.Unlock()

	if err := os.MkdirAll(filepath.Dir(k.path), 0o700); err != nil {
		return fmt.Errorf("add known host: %w", err)
	}
	f, err := os.OpenFile(k.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("add known host: %w", err)
	}
	entry := host + " " + fp + "\n"
	// A hand-edited file may lack its final newline; don't glue our entry onto that line.
	if missing, err := missingFinalNewline(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("add known host: %w", err)
	} else if missing {
		entry = "\n" + entry
	}
	// One write call, so concurrent appenders cannot interleave within a line.
	if _, err := f.WriteString(entry); err != nil {
		_ = f.Close()
		return fmt.Errorf("add known host: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("add known host: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("add known host: %w", err)
	}
	return nil
}

// missingFinalNewline reports whether f is non-empty and does not end in a
// newline.
func missingFinalNewline(f *os.File) (bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	if fi.Size() == 0 {
		return false, nil
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], fi.Size()-1); err != nil {
		return false, err
	}
	return last[0] != '\n', nil
}

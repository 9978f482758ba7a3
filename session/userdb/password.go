package userdb

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// MaxPasswordLen is the longest password, in bytes, that Add and SetPassword
// accept. It keeps hashing cost independent of what a client sends.
const MaxPasswordLen = 1024

// ErrInvalidPassword is returned (wrapped) by Add and SetPassword for an
// empty password or one longer than MaxPasswordLen.
var ErrInvalidPassword = errors.New("invalid password")

// ErrMalformedHash is returned (wrapped) by VerifyPassword when the encoded
// hash is not an argon2id PHC string this package can verify, or when its
// parameters are outside sane bounds (a corrupted row must not make the
// server allocate gigabytes or loop for minutes). The message never contains
// the hash itself.
var ErrMalformedHash = errors.New("malformed argon2id hash")

const (
	saltLen = 16 // bytes, the RFC 9106 recommendation
	keyLen  = 32 // bytes

	// Bounds for parameters read back from a stored hash. They are wide enough
	// for any deliberate configuration and narrow enough that a corrupted row
	// cannot exhaust memory or CPU.
	maxMemory  = 4 << 20 // KiB, 4 GiB
	maxTime    = 100
	minSaltLen = 8 // the Argon2 minimum
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
)

// Params are the argon2id cost parameters used to hash new passwords.
// Verification always uses the parameters stored in the hash itself, so
// changing Params does not invalidate existing passwords.
type Params struct {
	Memory  uint32 // memory in KiB; at least 8*Threads
	Time    uint32 // number of passes over memory; at least 1
	Threads uint8  // degree of parallelism; at least 1
}

// DefaultParams are the parameters used when Options.Params is zero:
// m=19456 KiB (19 MiB), t=2, p=1, the minimum the OWASP Password Storage
// Cheat Sheet recommends for argon2id. It costs tens of milliseconds per
// login on a server core while keeping memory per concurrent login small,
// which matters because a file server may face login bursts; raise Memory
// if the host has RAM to spare.
var DefaultParams = Params{Memory: 19456, Time: 2, Threads: 1}

// validate reports whether p can be passed to argon2.IDKey without a panic
// and without an absurd cost.
func (p Params) validate() error {
	switch {
	case p.Threads < 1:
		return errors.New("argon2id threads must be at least 1")
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("argon2id time must be between 1 and %d", maxTime)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		return fmt.Errorf("argon2id memory must be between 8*threads and %d KiB", maxMemory)
	}
	return nil
}

// HashPassword returns the argon2id hash of password with a fresh random
// 16-byte salt and a 32-byte key, encoded as a PHC string:
//
//	$argon2id$v=19$m=<Memory>,t=<Time>,p=<Threads>$<salt>$<key>
//
// with salt and key in unpadded standard base64. It does not check the
// password length; Store does. It is safe for concurrent use but does not
// bound concurrency or memory; Store does that for its callers.
func HashPassword(password string, p Params) (string, error) {
	if err := p.validate(); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails (Go 1.24+)
	return hashWithSalt(password, salt, p), nil
}

// hashWithSalt is HashPassword with a given salt, for known-answer tests.
func hashWithSalt(password string, salt []byte, p Params) string {
	return encodeHash(p, salt, argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen))
}

// VerifyPassword reports whether password matches encoded, a PHC string as
// produced by HashPassword. It uses the parameters, salt and key length stored
// in encoded and compares in constant time. A wrong password gives
// (false, nil); an encoded string that cannot be parsed or carries parameters
// outside sane bounds gives (false, err) with err wrapping ErrMalformedHash.
func VerifyPassword(encoded, password string) (bool, error) {
	h, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	return h.verify(password), nil
}

// phcHash is a parsed argon2id PHC string.
type phcHash struct {
	params Params
	salt   []byte
	key    []byte
}

func (h phcHash) verify(password string) bool {
	got := argon2.IDKey([]byte(password), h.salt, h.params.Time, h.params.Memory, h.params.Threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

// b64 is the PHC "B64" encoding. Strict rejects non-zero trailing bits, so
// every hash has exactly one accepted spelling.
var b64 = base64.RawStdEncoding.Strict()

func encodeHash(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// malformed wraps ErrMalformedHash with what is wrong. Callers pass a fixed
// description, never a piece of the input, so no hash material leaks into
// logs.
func malformed(what string) error {
	return fmt.Errorf("%w: %s", ErrMalformedHash, what)
}

// parseHash parses the exact form HashPassword writes. Parameters must appear
// in the order m, t, p, which is what the reference implementation and
// every common library emit.
func parseHash(encoded string) (phcHash, error) {
	var h phcHash
	// Longer than any hash within the bounds below; refuse before splitting.
	if len(encoded) > 256 {
		return h, malformed("too long")
	}
	// The base64 decoder skips CR and LF even in strict mode; refuse them so
	// that a hash has exactly one accepted spelling.
	if strings.ContainsAny(encoded, "\r\n") {
		return h, malformed("contains a line break")
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return h, malformed("wrong number of fields")
	}
	if parts[1] != "argon2id" {
		return h, malformed("algorithm is not argon2id")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return h, malformed("unsupported version")
	}

	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return h, malformed("wrong number of parameters")
	}
	var vals [3]uint64
	for i, name := range [3]string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(kv[i], name+"=")
		if !ok {
			return h, malformed("parameters must be m, t, p in that order")
		}
		n, err := parseDecimal(v)
		if err != nil {
			return h, malformed("parameter " + name + " is not a decimal number")
		}
		vals[i] = n
	}
	if vals[0] > maxMemory || vals[1] > maxTime || vals[2] > 255 {
		return h, malformed("parameters out of range")
	}
	h.params = Params{Memory: uint32(vals[0]), Time: uint32(vals[1]), Threads: uint8(vals[2])}
	if err := h.params.validate(); err != nil {
		return h, malformed("parameters out of range")
	}

	var err error
	if h.salt, err = b64.DecodeString(parts[4]); err != nil {
		return h, malformed("salt is not base64")
	}
	if len(h.salt) < minSaltLen || len(h.salt) > maxSaltLen {
		return h, malformed("salt length out of range")
	}
	if h.key, err = b64.DecodeString(parts[5]); err != nil {
		return h, malformed("key is not base64")
	}
	if len(h.key) < minKeyLen || len(h.key) > maxKeyLen {
		return h, malformed("key length out of range")
	}
	return h, nil
}

// parseDecimal accepts only canonical decimal numbers: no sign, no leading
// zeros, at most 10 digits (the bounds checks need nothing larger).
func parseDecimal(s string) (uint64, error) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, errors.New("not canonical")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a digit")
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

package userdb

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// cheap keeps tests fast; never use it outside tests.
var cheap = Params{Memory: 64, Time: 1, Threads: 1}

// Known answers computed with the reference C implementation (libargon2,
// argon2id_hash_encoded, 32-byte key), independent of golang.org/x/crypto.
// The first is also in the reference implementation's own test suite.
var vectors = []struct {
	name     string
	password string
	salt     string
	params   Params
	encoded  string
	slow     bool // 64 MiB; skipped with -short
}{
	{
		name: "reference", password: "password", salt: "somesalt",
		params:  Params{Memory: 65536, Time: 2, Threads: 1},
		encoded: "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		slow:    true,
	},
	{
		name: "cheap", password: "correct horse battery staple", salt: "qftp-test-salt16",
		params:  cheap,
		encoded: "$argon2id$v=19$m=64,t=1,p=1$cWZ0cC10ZXN0LXNhbHQxNg$Su9V+YznvhfHZgWipV3H66trUJOCNZLQMfo30YzX+BQ",
	},
	{
		name: "default params", password: "hunter2", salt: "0123456789abcdef",
		params:  DefaultParams,
		encoded: "$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$nUxirfVK2I/vOT6f2ly2wSgjwZ1oqwTLCmrcpDyjicA",
	},
}

func TestKnownVectors(t *testing.T) {
	t.Parallel()
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			if v.slow && testing.Short() {
				t.Skip("64 MiB hash")
			}
			if got := hashWithSalt(v.password, []byte(v.salt), v.params); got != v.encoded {
				t.Errorf("hashWithSalt = %s\nwant          %s", got, v.encoded)
			}
			ok, err := VerifyPassword(v.encoded, v.password)
			if err != nil || !ok {
				t.Errorf("VerifyPassword(right) = %v, %v; want true, nil", ok, err)
			}
			ok, err = VerifyPassword(v.encoded, v.password+"x")
			if err != nil || ok {
				t.Errorf("VerifyPassword(wrong) = %v, %v; want false, nil", ok, err)
			}
		})
	}
}

var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashPassword(t *testing.T) {
	t.Parallel()
	h1, err := HashPassword("s3cret", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if !phcRE.MatchString(h1) {
		t.Errorf("HashPassword = %q, want 16-byte salt and 32-byte key in PHC form", h1)
	}
	h2, err := HashPassword("s3cret", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 {
		t.Error("two hashes of the same password are equal; salt is not random")
	}
	for _, h := range []string{h1, h2} {
		if ok, err := VerifyPassword(h, "s3cret"); err != nil || !ok {
			t.Errorf("VerifyPassword(right) = %v, %v", ok, err)
		}
		if ok, err := VerifyPassword(h, "s3cret "); err != nil || ok {
			t.Errorf("VerifyPassword(wrong) = %v, %v", ok, err)
		}
	}
}

func TestHashPasswordBadParams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    Params
	}{
		{"zero", Params{}},
		{"no threads", Params{Memory: 64, Time: 1}},
		{"no time", Params{Memory: 64, Threads: 1}},
		{"memory below 8*threads", Params{Memory: 15, Time: 1, Threads: 2}},
		{"memory too large", Params{Memory: maxMemory + 1, Time: 1, Threads: 1}},
		{"time too large", Params{Memory: 64, Time: maxTime + 1, Threads: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if h, err := HashPassword("pw", tt.p); err == nil {
				t.Fatalf("HashPassword(%+v) = %q, want error", tt.p, h)
			}
		})
	}
}

// good is a valid cheap hash the corrupted cases below are derived from.
const good = "$argon2id$v=19$m=64,t=1,p=1$cWZ0cC10ZXN0LXNhbHQxNg$Su9V+YznvhfHZgWipV3H66trUJOCNZLQMfo30YzX+BQ"

var corrupted = []struct {
	name    string
	encoded string
}{
	{"empty", ""},
	{"dollar", "$"},
	{"garbage", "not a hash"},
	{"bcrypt", "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
	{"argon2i", strings.Replace(good, "argon2id", "argon2i", 1)},
	{"argon2d", strings.Replace(good, "argon2id", "argon2d", 1)},
	{"version 16", strings.Replace(good, "v=19", "v=16", 1)},
	{"no version", "$argon2id$m=64,t=1,p=1$cWZ0cC10ZXN0LXNhbHQxNg$Su9V+YznvhfHZgWipV3H66trUJOCNZLQMfo30YzX+BQ"},
	{"truncated", good[:40]},
	{"extra field", good + "$x"},
	{"trailing dollar", good + "$"},
	{"leading text", "x" + good},
	{"params reordered", strings.Replace(good, "m=64,t=1,p=1", "t=1,m=64,p=1", 1)},
	{"param missing", strings.Replace(good, "m=64,t=1,p=1", "m=64,t=1", 1)},
	{"param extra", strings.Replace(good, "m=64,t=1,p=1", "m=64,t=1,p=1,x=2", 1)},
	{"memory zero", strings.Replace(good, "m=64", "m=0", 1)},
	{"memory below 8*p", strings.Replace(good, "m=64,t=1,p=1", "m=15,t=1,p=2", 1)},
	{"memory over 4 GiB", strings.Replace(good, "m=64", "m=4194305", 1)},
	{"memory overflow", strings.Replace(good, "m=64", "m=99999999999999999999", 1)},
	{"memory negative", strings.Replace(good, "m=64", "m=-64", 1)},
	{"memory plus sign", strings.Replace(good, "m=64", "m=+64", 1)},
	{"memory leading zero", strings.Replace(good, "m=64", "m=064", 1)},
	{"memory hex", strings.Replace(good, "m=64", "m=0x40", 1)},
	{"memory empty", strings.Replace(good, "m=64", "m=", 1)},
	{"time zero", strings.Replace(good, "t=1", "t=0", 1)},
	{"time absurd", strings.Replace(good, "t=1", "t=101", 1)},
	{"threads zero", strings.Replace(good, "p=1", "p=0", 1)},
	{"threads over 255", strings.Replace(good, "m=64,t=1,p=1", "m=4096,t=1,p=256", 1)},
	{"salt not base64", strings.Replace(good, "cWZ0cC10ZXN0LXNhbHQxNg", "cWZ0cC10ZXN0LXNhbHQxN!", 1)},
	{"salt padded", strings.Replace(good, "cWZ0cC10ZXN0LXNhbHQxNg", "cWZ0cC10ZXN0LXNhbHQxNg==", 1)},
	{"salt non-canonical bits", strings.Replace(good, "cWZ0cC10ZXN0LXNhbHQxNg", "cWZ0cC10ZXN0LXNhbHQxNh", 1)},
	{"salt with newline", strings.Replace(good, "cWZ0cC10ZXN0LXNhbHQxNg", "cWZ0cC10ZXN0\nLXNhbHQxNg", 1)},
	{"salt empty", strings.Replace(good, "cWZ0cC10ZXN0LXNhbHQxNg", "", 1)},
	{"salt too short", strings.Replace(good, "cWZ0cC10ZXN0LXNhbHQxNg", "c2FsdA", 1)},
	{"key empty", strings.TrimSuffix(good, "Su9V+YznvhfHZgWipV3H66trUJOCNZLQMfo30YzX+BQ")},
	{"key too short", strings.Replace(good, "Su9V+YznvhfHZgWipV3H66trUJOCNZLQMfo30YzX+BQ", "Su9V+Yznvhc", 1)},
	{"key url alphabet", strings.Replace(good, "+", "-", -1)},
	{"key too long", good + strings.Repeat("A", 80)},
	{"very long", good + strings.Repeat("$", 100000)},
}

func TestVerifyPasswordCorrupted(t *testing.T) {
	t.Parallel()
	for _, tt := range corrupted {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ok, err := VerifyPassword(tt.encoded, "correct horse battery staple")
			if ok || !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("VerifyPassword = %v, %v; want false, ErrMalformedHash", ok, err)
			}
			// The message must not carry hash material.
			for _, part := range strings.Split(tt.encoded, "$") {
				if len(part) >= 6 && !strings.HasPrefix(part, "argon2") && strings.Contains(err.Error(), part) {
					t.Errorf("error %q contains hash field %q", err, part)
				}
			}
		})
	}
}

func TestParseHashBounds(t *testing.T) {
	t.Parallel()
	// The largest accepted parameters parse; they are not run.
	big := strings.Replace(good, "m=64,t=1,p=1", "m=4194304,t=100,p=255", 1)
	h, err := parseHash(big)
	if err != nil {
		t.Fatalf("parseHash(max params) = %v", err)
	}
	if want := (Params{Memory: maxMemory, Time: maxTime, Threads: 255}); h.params != want {
		t.Errorf("params = %+v, want %+v", h.params, want)
	}
}

func FuzzVerifyPassword(f *testing.F) {
	f.Add(good, "correct horse battery staple")
	for _, v := range vectors {
		f.Add(v.encoded, v.password)
	}
	for _, c := range corrupted {
		if len(c.encoded) < 1000 {
			f.Add(c.encoded, "pw")
		}
	}
	f.Fuzz(func(t *testing.T, encoded, password string) {
		h, err := parseHash(encoded)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("parseHash error %v does not wrap ErrMalformedHash", err)
			}
			if ok, err := VerifyPassword(encoded, password); ok || err == nil {
				t.Fatalf("VerifyPassword = %v, %v after parse error", ok, err)
			}
			return
		}
		// The parser accepts only the canonical spelling.
		if got := encodeHash(h.params, h.salt, h.key); got != encoded {
			t.Fatalf("re-encoded %q as %q", encoded, got)
		}
		// Only run argon2id when the fuzzer's parameters are cheap; the
		// parser happily accepts a legitimate 4 GiB hash.
		if h.params.Memory <= 1024 && h.params.Time <= 4 {
			if _, err := VerifyPassword(encoded, password); err != nil {
				t.Fatalf("VerifyPassword after successful parse: %v", err)
			}
		}
	})
}

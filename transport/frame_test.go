package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFrameRoundTrip(t *testing.T) {
	t.Parallel()
	in := Request{ID: 7, Op: OpMv, Path: "/文件 😀", To: "b", Force: true}
	var buf bytes.Buffer
	if err := WriteFrame(&buf, &in); err != nil {
		t.Fatal(err)
	}
	var out Request
	if err := ReadFrame(&buf, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Fatalf("got %+v, want %+v", out, in)
	}
	if err := ReadFrame(&buf, &out); !errors.Is(err, io.EOF) {
		t.Fatalf("read past end: %v, want io.EOF", err)
	}
}

func frame(body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	return append(b, body...)
}

func TestReadFrameRejects(t *testing.T) {
	t.Parallel()
	huge := binary.BigEndian.AppendUint32(nil, MaxFrameSize+1)
	// A CBOR map {"id":1,"id":2}: duplicate keys.
	dup := []byte{0xa2, 0x62, 'i', 'd', 0x01, 0x62, 'i', 'd', 0x02}
	// Indefinite-length map.
	indef := []byte{0xbf, 0x62, 'i', 'd', 0x01, 0xff}
	// Tag 1 (epoch time) wrapping an int.
	tagged := []byte{0xa1, 0x62, 'i', 'd', 0xc1, 0x01}
	// Deep nesting: 20 nested arrays.
	deep := append(bytes.Repeat([]byte{0x81}, 20), 0x01)
	// Invalid UTF-8 in a text string.
	badUTF8 := []byte{0xa1, 0x62, 'o', 'p', 0x62, 0xff, 0xfe}
	// Wrong type: id as a string.
	wrongType := []byte{0xa1, 0x62, 'i', 'd', 0x61, 'x'}
	tests := []struct {
		name string
		in   []byte
		want error // nil: any error
	}{
		{"oversized length", huge, ErrFrameTooLarge},
		{"truncated header", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"truncated body", append(binary.BigEndian.AppendUint32(nil, 10), 1, 2), io.ErrUnexpectedEOF},
		{"duplicate keys", frame(dup), nil},
		{"indefinite length", frame(indef), nil},
		{"tag", frame(tagged), nil},
		{"nesting", frame(deep), nil},
		{"invalid utf8", frame(badUTF8), nil},
		{"wrong type", frame(wrongType), nil},
		{"empty body", frame(nil), nil},
		{"garbage", frame([]byte{0xff, 0xff, 0xff}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var req Request
			err := ReadFrame(bytes.NewReader(tt.in), &req)
			if err == nil {
				t.Fatalf("accepted %x as %+v", tt.in, req)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestWriteFrameTooLarge(t *testing.T) {
	t.Parallel()
	err := WriteFrame(io.Discard, &Request{Path: strings.Repeat("a", MaxFrameSize)})
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v, want ErrFrameTooLarge", err)
	}
}

func TestUnknownFieldsIgnored(t *testing.T) {
	t.Parallel()
	body, err := Marshal(map[string]any{"id": 3, "op": "pwd", "future": []int{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	var req Request
	if err := ReadFrame(bytes.NewReader(frame(body)), &req); err != nil {
		t.Fatal(err)
	}
	if req.ID != 3 || req.Op != "pwd" {
		t.Fatalf("got %+v", req)
	}
}

func TestSplitHostPort(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		host string
		port int
		err  bool
	}{
		{"example.com", "example.com", DefaultPort, false},
		{"example.com:99", "example.com", 99, false},
		{"127.0.0.1", "127.0.0.1", DefaultPort, false},
		{"::1", "::1", DefaultPort, false},
		{"[::1]", "::1", DefaultPort, false},
		{"[::1]:8000", "::1", 8000, false},
		{"", "", 0, true},
		{"host:0", "", 0, true},
		{"host:70000", "", 0, true},
		{"host:x", "", 0, true},
		{":7443", "", 0, true},
	}
	for _, tt := range tests {
		h, p, err := SplitHostPort(tt.in)
		if (err != nil) != tt.err || h != tt.host || p != tt.port {
			t.Errorf("SplitHostPort(%q) = %q, %d, %v", tt.in, h, p, err)
		}
	}
}

// FuzzReadFrame feeds arbitrary bytes to the frame decoder for every
// message type a peer can send.
func FuzzReadFrame(f *testing.F) {
	for _, v := range []any{
		&Request{ID: 1, Op: OpLogin, User: "alice", Password: "x"},
		&Response{ID: 2, Entries: []Entry{{Name: "a", Type: TypeFile, Size: 3}}},
		&TransferRequest{Op: OpPut, Path: "/a", Length: 10, Size: 10},
		&TransferReply{Err: &Error{Code: CodeNotFound, Msg: "no"}},
		&Trailer{Bytes: 5},
	} {
		var buf bytes.Buffer
		if err := WriteFrame(&buf, v); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		var req Request
		_ = ReadFrame(r, &req)
		r = bytes.NewReader(b)
		var resp Response
		_ = ReadFrame(r, &resp)
		r = bytes.NewReader(b)
		var tr TransferRequest
		_ = ReadFrame(r, &tr)
		r = bytes.NewReader(b)
		var rep TransferReply
		_ = ReadFrame(r, &rep)
	})
}

func TestResolve(t *testing.T) {
	t.Parallel()
	// A resolver whose name server never answers: names not in the
	// hosts file take until ctx ends, and nothing leaves the machine.
	silent := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	for _, tc := range []struct {
		addr string
		want string // "" for an error
	}{
		{"127.0.0.1:7443", "127.0.0.1:7443"},
		{"[::1]:80", "[::1]:80"},
		{"[::ffff:127.0.0.1]:9", "127.0.0.1:9"},
		{"[fe80::1%lo]:5", "[fe80::1%lo]:5"},
		{"127.0.0.1:99999", ""},
		{"127.0.0.1", ""},
		{"qftp.invalid:7443", ""}, // the silent name server: the deadline ends it
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		start := time.Now()
		got, err := resolve(ctx, silent, tc.addr)
		cancel()
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("resolve(%q) = %v, want an error", tc.addr, got)
		case tc.want != "" && (err != nil || got.String() != tc.want):
			t.Errorf("resolve(%q) = %v, %v; want %s", tc.addr, got, err, tc.want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("resolve(%q) took %v, past its context's deadline", tc.addr, d)
		}
	}
	// A name with an IPv4 address resolves to it, as net.ResolveUDPAddr
	// does (localhost, from the hosts file, has ::1 too on most systems).
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if got, err := resolve(ctx, silent, "localhost:1"); err == nil && got.IP.To4() == nil {
		t.Errorf("localhost resolved to %v, not its IPv4 address", got)
	}
}

package session_test

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/quic-go/quic-go"

	"github.com/qftp/qftp/certs"
	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/sessiontest"
	"github.com/qftp/qftp/transport"
)

const benchFileSize = 256 << 20

// BenchmarkBareQUIC is the reference: one quic-go stream over loopback
// with the same configuration, moving benchFileSize bytes from memory to
// memory, in the same process.
func BenchmarkBareQUIC(b *testing.B) {
	dir := b.TempDir()
	cert, leaf, _, err := certs.LoadOrCreate(dir)
	if err != nil {
		b.Fatal(err)
	}
	// Its own transport, closed at the end: transport.Listen's lives as
	// long as the process, and the benchmark runs more than once.
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	defer func() { _ = tr.Close(); _ = udp.Close() }()
	ln, err := transport.ListenTransport(tr, cert, 4, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			qc, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			go func() {
				for {
					str, err := qc.AcceptStream(context.Background())
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, str)
					_ = str.Close()
				}
			}()
		}
	}()
	v := &certs.Verifier{KnownHosts: certs.OpenKnownHosts(filepath.Join(dir, "kh")), HostKey: "x:1", ServerName: "127.0.0.1", Fingerprint: certs.Fingerprint(leaf)}
	qc, err := transport.Dial(b.Context(), ln.Addr().String(), v.TLSConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer qc.CloseWithError(0, "")
	buf := make([]byte, 256<<10)
	b.SetBytes(benchFileSize)
	b.ResetTimer()
	for range b.N {
		str, err := qc.OpenStreamSync(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		for n := 0; n < benchFileSize; n += len(buf) {
			if _, err := str.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		_ = str.Close()
		_, _ = io.Copy(io.Discard, str)
	}
}

// BenchmarkPutGet measures qftp put and get of one benchFileSize file over
// loopback: disk to disk, hashing and verification included.
func BenchmarkPutGet(b *testing.B) {
	ts := sessiontest.Start(b)
	ts.AddUser("bench", "pw")
	c := ts.Login(b, "bench", "pw")
	src := filepath.Join(b.TempDir(), "src")
	f, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i*31 + 7)
	}
	for range benchFileSize / len(chunk) {
		_, _ = f.Write(chunk)
	}
	_ = f.Close()
	// get reads its own copy, so that it can run alone (-bench PutGet/get).
	if err := os.Link(src, filepath.Join(ts.HomeDir, "bench", "g")); err != nil {
		b.Fatal(err)
	}
	b.Run("put", func(b *testing.B) {
		b.SetBytes(benchFileSize)
		for range b.N {
			if _, err := c.Put(b.Context(), src, "f", session.TransferOptions{Force: true}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("get", func(b *testing.B) {
		b.SetBytes(benchFileSize)
		dst := filepath.Join(b.TempDir(), "dst")
		for range b.N {
			if _, err := c.Get(b.Context(), "g", dst, session.TransferOptions{Force: true}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

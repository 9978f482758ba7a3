package session_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qftp/qftp/certs"
	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/sessiontest"
	"github.com/qftp/qftp/transport"
	"github.com/qftp/qftp/transport/blocks"
)

const benchFileSize = 256 << 20

// reportCPU reports the CPU time the whole process (client and server
// alike) spent per GiB moved since start: both ends share the cores, so
// this cost is what bounds the rate on loopback.
func reportCPU(b *testing.B, start time.Duration, bytes int64) {
	if start == 0 || bytes == 0 {
		return
	}
	b.ReportMetric((processCPU()-start).Seconds()/(float64(bytes)/(1<<30)), "cpu-s/GiB")
}

// BenchmarkBareQUIC is the reference: one quic-go stream over loopback
// with the same configuration, moving benchFileSize bytes from memory to
// memory, in the same process.
func BenchmarkBareQUIC(b *testing.B) {
	send := startBare(b)
	b.SetBytes(benchFileSize)
	b.ResetTimer()
	cpu := processCPU()
	for range b.N {
		send()
	}
	reportCPU(b, cpu, int64(b.N)*benchFileSize)
}

// startBare starts a bare quic-go server that discards what it reads,
// connects to it, and returns a function that sends benchFileSize bytes
// from memory on a new stream. Everything stops when b ends.
func startBare(b *testing.B) func() {
	dir := b.TempDir()
	cert, leaf, _, err := certs.LoadOrCreate(dir)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := sessiontest.Listen(b, "127.0.0.1:0", cert)
	if err != nil {
		b.Fatal(err)
	}
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
	b.Cleanup(func() { _ = qc.CloseWithError(0, "") })
	buf := make([]byte, 256<<10)
	return func() {
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

// startQftp starts a qftp server with a user and a benchFileSize file in
// both places, logs in, and returns functions that put and get it: disk to
// disk, hashing and verification included. get reads a copy of its own, so
// that it can run alone. The server keeps the block digests of a file
// unchanged for 2 s that it has sent (see digestCache), so from then on
// get's server side does not hash; getCold gets another copy after
// changing its ctime, so that its server side does.
func startQftp(b *testing.B) (put, get, getCold func(), ts *sessiontest.Server) {
	ts = sessiontest.Start(b)
	ts.AddUser("bench", "pw")
	c := ts.Login(b, "bench", "pw")
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	// The cold get's file is a copy, not a link: changing its ctime must
	// leave g's alone.
	cold := filepath.Join(ts.HomeDir, "bench", "cold")
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i*31 + 7)
	}
	for _, p := range []string{src, cold} {
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		for range benchFileSize / len(chunk) {
			_, _ = f.Write(chunk)
		}
		_ = f.Close()
	}
	if err := os.Link(src, filepath.Join(ts.HomeDir, "bench", "g")); err != nil {
		b.Fatal(err)
	}
	dst := filepath.Join(dir, "dst")
	put = func() {
		if _, err := c.Put(b.Context(), src, "f", session.TransferOptions{Force: true}); err != nil {
			b.Fatal(err)
		}
	}
	get = func() {
		if _, err := c.Get(b.Context(), "g", dst, session.TransferOptions{Force: true}); err != nil {
			b.Fatal(err)
		}
	}
	getCold = func() {
		if err := os.Chmod(cold, 0o644); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Get(b.Context(), "cold", dst, session.TransferOptions{Force: true}); err != nil {
			b.Fatal(err)
		}
	}
	return put, get, getCold, ts
}

// BenchmarkPutGet measures qftp put and get of one benchFileSize file over
// loopback.
func BenchmarkPutGet(b *testing.B) {
	put, get, getCold, _ := startQftp(b)
	for _, t := range []struct {
		name string
		run  func()
	}{{"put", put}, {"get", get}, {"get-cold", getCold}} {
		b.Run(t.name, func(b *testing.B) {
			b.SetBytes(benchFileSize)
			cpu := processCPU()
			for range b.N {
				t.run()
			}
			reportCPU(b, cpu, int64(b.N)*benchFileSize)
		})
	}
}

// BenchmarkLoopbackRatio measures the target ratios directly: each round
// runs a bare quic-go stream, a get, a cold get and a put back to back (in
// rotating order), and the reported ratios are the medians of the rounds'
// own ratios. Rates on a shared VM swing by a fifth between runs a minute
// apart; runs seconds apart swing together, so their ratio is steadier.
// Run it with -benchtime 9x or more.
func BenchmarkLoopbackRatio(b *testing.B) {
	bare := startBare(b)
	put, get, getCold, ts := startQftp(b)
	names := []string{"bare", "get", "get-cold", "put"}
	runs := []func(){bare, get, getCold, put}
	ratios := make([][]float64, len(runs))
	total := make([]time.Duration, len(runs))
	cpu := make([]time.Duration, len(runs)) // process CPU time during each kind of run
	b.ResetTimer()
	for i := range b.N {
		d := make([]time.Duration, len(runs))
		for k := range runs {
			j := (i + k) % len(runs)
			t0, c0 := time.Now(), processCPU()
			runs[j]()
			d[j] = time.Since(t0)
			total[j] += d[j]
			cpu[j] += processCPU() - c0
		}
		for j := range runs {
			ratios[j] = append(ratios[j], d[0].Seconds()/d[j].Seconds())
		}
	}
	b.StopTimer()
	if freePageReporting() && b.N > 1 { // not again for the first, 1-round run
		b.Log("note: this VM reports free pages to its host, which makes writing new files several times dearer; see docs/BENCHMARKS.md")
	}
	// The gets that the server answered from remembered digests (the
	// first ones come within 2 s of the file's creation and do not).
	b.ReportMetric(float64(session.DigestCacheHits(ts.Srv))/float64(blocks.Count(benchFileSize, blocks.For(benchFileSize))), "remembered-gets")
	mb := float64(b.N) * benchFileSize / 1e6
	for j, name := range names {
		b.ReportMetric(mb/total[j].Seconds(), name+"-MB/s")
		if cpu[j] > 0 {
			// Cores busy: below 2 on two cores, the run waited on
			// something other than CPU.
			b.ReportMetric(cpu[j].Seconds()/total[j].Seconds(), name+"-cores")
			b.ReportMetric(cpu[j].Seconds()/(float64(b.N)*benchFileSize/(1<<30)), name+"-cpu-s/GiB")
		}
		if j > 0 {
			b.ReportMetric(median(ratios[j]), name+"/bare")
		}
	}
}

// freePageReporting reports whether this is a VM whose kernel hands free
// memory back to the host (virtio-balloon free page reporting, feature
// bit 5, with an order the kernel can reach). Touching such memory again
// costs a fault in the host: writing 256 MiB into a new file then took
// 200-650 ms of CPU instead of 30 ms on this project's test VM, which
// counts against put and get (they write files) and not against the bare
// stream (it writes nowhere). See docs/BENCHMARKS.md.
func freePageReporting() bool {
	order, err := os.ReadFile("/sys/module/page_reporting/parameters/page_reporting_order")
	if err != nil {
		return false
	}
	if n, err := strconv.Atoi(strings.TrimSpace(string(order))); err != nil || n > 10 {
		return false // above MAX_PAGE_ORDER: nothing is ever reported
	}
	devs, _ := filepath.Glob("/sys/bus/virtio/drivers/virtio_balloon/virtio*/features")
	for _, d := range devs {
		if f, err := os.ReadFile(d); err == nil && len(f) > 5 && f[5] == '1' {
			return true
		}
	}
	return false
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/sync/errgroup"

	"github.com/qftp/qftp/certs"
	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/size"
	"github.com/qftp/qftp/transport"
	"github.com/qftp/qftp/transport/relay"
)

// config is what one benchmark run measures; cli.config builds it from
// validated flags.
type config struct {
	Size        int64 // bytes of the large file
	Files       int   // small files
	FileSize    int64 // bytes of each small file
	Jobs        int   // small files in flight
	Connections int   // session.ConnectionsAuto or at least 1
	Scenarios   []string
	Link        relay.Link // each direction of the lossy scenario
	Blackout    time.Duration
	Seed        uint64
	Runs        int
	BareTime    time.Duration // cap of a bare stream's sending; 0: none
	Timeout     time.Duration // of each run of each measurement
	Dir         string        // parent of the work directory; "" for the system's
}

// sample is the outcome of one run of one measurement.
type sample struct {
	bytes int64         // file bytes moved and verified
	files int           // files moved (small-file rows)
	dur   time.Duration // wall time of the transfer alone (not dialing or verifying)
	links int           // connections used
	note  string
}

// mbps is the rate in MB/s (10^6 bytes per second), as Go benchmarks print it.
func (s sample) mbps() float64 { return float64(s.bytes) / 1e6 / s.dur.Seconds() }

// filesPerSec is the rate in files per second.
func (s sample) filesPerSec() float64 { return float64(s.files) / s.dur.Seconds() }

// bench runs every measurement cfg asks for, in one process, and returns
// the report. On error the report holds the rows measured before it. The
// work directory is removed before bench returns.
func bench(ctx context.Context, cfg config, log *slog.Logger) (rep *report, err error) {
	rep = newReport(cfg)
	dir, err := os.MkdirTemp(cfg.Dir, "qftp-bench-")
	if err != nil {
		return rep, fmt.Errorf("create work directory: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = fmt.Errorf("remove work directory: %w", rerr)
		}
	}()
	b := &bencher{cfg: cfg, log: log, dir: dir}
	if advice := transport.UDPBufferAdvice(); advice != "" {
		// Small socket buffers cap QUIC on loopback: say so next to the numbers.
		log.Warn(advice)
	}
	if err := b.setup(ctx); err != nil {
		b.teardown()
		return rep, err
	}
	defer b.teardown()
	for _, sc := range cfg.Scenarios {
		if err := b.scenario(ctx, sc, rep); err != nil {
			return rep, fmt.Errorf("%s: %w", sc, err)
		}
	}
	return rep, nil
}

// bencher holds the servers and the source data of one run of bench.
type bencher struct {
	cfg config
	log *slog.Logger
	dir string

	qftp     *qftpServer
	bare     *bareServer
	verifier *certs.Verifier // trusts the servers' certificate

	src    string   // the large file
	srcSum [32]byte // its SHA-256
	tree   string   // root of the small files
	files  []string // their paths relative to tree, slash-separated
	chunk  []byte   // what a bare stream sends, over and over
}

// setup generates the data and starts both servers.
func (b *bencher) setup(ctx context.Context) error {
	cert, leaf, _, err := certs.LoadOrCreate(filepath.Join(b.dir, "cert"))
	if err != nil {
		return fmt.Errorf("create certificate: %w", err)
	}
	// Seeded, incompressible contents: the same run after run.
	var seed [32]byte
	for i := range 8 {
		seed[i] = byte(b.cfg.Seed >> (8 * i))
	}
	rng := rand.NewChaCha8(seed)
	b.chunk = make([]byte, 256<<10)
	_, _ = rng.Read(b.chunk)
	b.src = filepath.Join(b.dir, "large")
	if b.srcSum, err = writeRandom(b.src, b.cfg.Size, rng); err != nil {
		return err
	}
	b.tree = filepath.Join(b.dir, "small")
	if err := b.writeTree(rng); err != nil {
		return err
	}
	if b.qftp, err = startQftp(ctx, filepath.Join(b.dir, "qftpd"), cert); err != nil {
		return fmt.Errorf("start qftp server: %w", err)
	}
	if b.bare, err = startBare(cert); err != nil {
		return fmt.Errorf("start bare quic-go server: %w", err)
	}
	// get reads its own copy, so that a broken put cannot spoil it.
	if err := os.Link(b.src, filepath.Join(b.qftp.home, "large")); err != nil {
		return fmt.Errorf("link the large file into the home: %w", err)
	}
	b.verifier = &certs.Verifier{
		KnownHosts:  certs.OpenKnownHosts(filepath.Join(b.dir, "known_hosts")),
		HostKey:     b.qftp.addr,
		ServerName:  "127.0.0.1",
		Fingerprint: certs.Fingerprint(leaf),
	}
	return nil
}

// teardown stops what setup started.
func (b *bencher) teardown() {
	if b.bare != nil {
		b.bare.stop()
	}
	if b.qftp != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.qftp.stop(ctx); err != nil {
			b.log.Warn("stop qftp server", "err", err)
		}
	}
}

// writeRandom writes n bytes from rng to path and returns their SHA-256.
func writeRandom(path string, n int64, rng io.Reader) ([32]byte, error) {
	f, err := os.Create(path)
	if err != nil {
		return [32]byte{}, fmt.Errorf("create source file: %w", err)
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), io.LimitReader(rng, n))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return [32]byte{}, fmt.Errorf("write source file: %w", err)
	}
	return [32]byte(h.Sum(nil)), nil
}

// writeTree writes the small files, spread over 16 directories as a real
// tree would be.
func (b *bencher) writeTree(rng io.Reader) error {
	buf := make([]byte, b.cfg.FileSize)
	for i := range b.cfg.Files {
		rel := fmt.Sprintf("d%02d/f%06d", i%16, i)
		p := filepath.Join(b.tree, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("create small files: %w", err)
		}
		_, _ = io.ReadFull(rng, buf)
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			return fmt.Errorf("create small files: %w", err)
		}
		b.files = append(b.files, rel)
	}
	return nil
}

// scenario measures every row of one scenario and adds them to rep.
func (b *bencher) scenario(ctx context.Context, name string, rep *report) error {
	qaddr, baddr := b.qftp.addr, b.bare.addr
	var r *relay.Relay // qftp's relay, for the blackout
	if name == "lossy" {
		// One relay per server, each with the seed, so that bare and
		// qftp meet the same sequence of losses.
		var err error
		if r, err = relay.New(qaddr, b.cfg.Link, b.cfg.Link, b.cfg.Seed); err != nil {
			return fmt.Errorf("start relay: %w", err)
		}
		defer r.Close()
		br, err := relay.New(baddr, b.cfg.Link, b.cfg.Link, b.cfg.Seed)
		if err != nil {
			return fmt.Errorf("start relay: %w", err)
		}
		defer br.Close()
		qaddr, baddr = r.Addr(), br.Addr()
	}
	bare, err := b.measure(ctx, name, "bare quic-go stream", func(ctx context.Context, _ int) (sample, error) {
		return b.bareOnce(ctx, baddr, 1)
	})
	if err != nil {
		return err
	}
	put, err := b.measure(ctx, name, "qftp put", func(ctx context.Context, _ int) (sample, error) {
		return b.putOnce(ctx, qaddr)
	})
	if err != nil {
		return err
	}
	var blackout *relay.Relay
	if b.cfg.Blackout > 0 {
		blackout = r // nil on loopback: no blackout there
	}
	get, err := b.measure(ctx, name, "qftp get", func(ctx context.Context, _ int) (sample, error) {
		return b.getOnce(ctx, qaddr, blackout)
	})
	if err != nil {
		return err
	}
	small, err := b.measure(ctx, name, "qftp put small files", func(ctx context.Context, run int) (sample, error) {
		return b.smallOnce(ctx, qaddr, fmt.Sprintf("/small-%s-%d", name, run+1))
	})
	if err != nil {
		return err
	}
	// Compare with as many bare connections as qftp used, when that was
	// more than one: that separates what striping buys from what qftp costs.
	var bareN sample
	if n := max(put.links, get.links); n > 1 {
		bareN, err = b.measure(ctx, name, fmt.Sprintf("bare quic-go ×%d", n), func(ctx context.Context, _ int) (sample, error) {
			return b.bareOnce(ctx, baddr, n)
		})
		if err != nil {
			return err
		}
	}
	ratio := func(s, ref sample) float64 {
		if ref.bytes == 0 {
			return 0
		}
		return s.mbps() / ref.mbps()
	}
	rep.add(row{scenario: name, test: "bare quic-go stream", s: bare})
	if bareN.bytes > 0 {
		rep.add(row{scenario: name, test: fmt.Sprintf("bare quic-go ×%d streams", bareN.links), s: bareN, vsBare: ratio(bareN, bare)})
	}
	rep.add(row{scenario: name, test: "qftp put", s: put, vsBare: ratio(put, bare), vsBareN: ratio(put, bareN)})
	rep.add(row{scenario: name, test: "qftp get", s: get, vsBare: ratio(get, bare), vsBareN: ratio(get, bareN)})
	rep.add(row{scenario: name, test: fmt.Sprintf("qftp put -r %d files, -j %d", b.cfg.Files, b.cfg.Jobs), s: small, perFile: true})
	return nil
}

// measure runs once cfg.Runs times, each within cfg.Timeout, and returns
// the median run by rate. Any failed run fails the measurement: a broken
// transfer must never be reported, fast or slow.
func (b *bencher) measure(ctx context.Context, scenario, test string, once func(ctx context.Context, run int) (sample, error)) (sample, error) {
	var runs []sample
	for run := range b.cfg.Runs {
		b.log.Info("measuring", "scenario", scenario, "test", test, "run", run+1, "of", b.cfg.Runs)
		rctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
		s, err := once(rctx, run)
		timedOut := ctx.Err() == nil && errors.Is(rctx.Err(), context.DeadlineExceeded)
		cancel()
		if err != nil {
			if timedOut {
				err = fmt.Errorf("not done within --timeout %v: %w", b.cfg.Timeout, err)
			}
			return sample{}, fmt.Errorf("%s, run %d: %w", test, run+1, err)
		}
		if s.dur <= 0 {
			s.dur = time.Nanosecond // a clock too coarse for a tiny transfer
		}
		b.log.Info("measured", "scenario", scenario, "test", test, "run", run+1,
			"MB/s", fmt.Sprintf("%.1f", s.mbps()), "time", s.dur.Round(time.Millisecond))
		runs = append(runs, s)
	}
	slices.SortFunc(runs, func(x, y sample) int {
		if x.mbps() < y.mbps() {
			return -1
		}
		if x.mbps() > y.mbps() {
			return 1
		}
		return 0
	})
	// The lower median of an even count: a run that happened.
	return runs[(len(runs)-1)/2], nil
}

// tlsConfig trusts the benchmark's servers.
func (b *bencher) tlsConfig() *tls.Config { return b.verifier.TLSConfig() }

// bareOnce sends the large file's size from memory over conns fresh QUIC
// connections to addr, one stream each, in parallel, and times it from
// the first byte to the last server confirmation.
func (b *bencher) bareOnce(ctx context.Context, addr string, conns int) (sample, error) {
	qcs := make([]*quic.Conn, conns)
	defer func() {
		for _, qc := range qcs {
			if qc != nil {
				_ = qc.CloseWithError(transport.ConnNoError, "")
			}
		}
	}()
	var dials errgroup.Group
	for i := range qcs {
		dials.Go(func() error {
			qc, err := transport.Dial(ctx, addr, b.tlsConfig())
			if err != nil {
				return fmt.Errorf("dial %s: %w", addr, err)
			}
			qcs[i] = qc
			return nil
		})
	}
	if err := dials.Wait(); err != nil {
		return sample{}, err
	}
	// Stream writes take no context: closing the connections ends them,
	// on a timeout or when one of them fails.
	g, gctx := errgroup.WithContext(ctx)
	stop := context.AfterFunc(gctx, func() {
		for _, qc := range qcs {
			_ = qc.CloseWithError(transport.ConnNoError, "stop")
		}
	})
	defer stop()
	start := time.Now()
	var deadline time.Time
	if b.cfg.BareTime > 0 {
		deadline = start.Add(b.cfg.BareTime)
	}
	sent := make([]int64, conns)
	for i, qc := range qcs {
		share := b.cfg.Size / int64(conns)
		if i == 0 {
			share += b.cfg.Size % int64(conns)
		}
		g.Go(func() error {
			var err error
			sent[i], err = sendBare(gctx, qc, share, b.chunk, deadline)
			return err
		})
	}
	err := g.Wait()
	dur := time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			return sample{}, context.Cause(ctx)
		}
		return sample{}, err
	}
	s := sample{bytes: sum(sent), dur: dur, links: conns}
	if s.bytes < b.cfg.Size {
		s.note = fmt.Sprintf("stopped by --bare-time after %s", size.Format(s.bytes))
	}
	return s, nil
}

func sum(xs []int64) int64 {
	var t int64
	for _, x := range xs {
		t += x
	}
	return t
}

// dial logs in to the qftp server at addr (the server or a relay).
func (b *bencher) dial(ctx context.Context, addr string) (*session.Client, error) {
	c, err := session.Dial(ctx, session.DialConfig{
		Addr: addr, User: benchUser, Password: b.qftp.password, TLS: b.tlsConfig(),
		Version: "qftp-bench", Timeout: 10 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("log in via %s: %w", addr, err)
	}
	return c, nil
}

// transferOptions are the options of every qftp transfer: the whole file
// each run, with --connections.
func (b *bencher) transferOptions() session.TransferOptions {
	return session.TransferOptions{Force: true, Resume: session.ResumeNever, Connections: b.cfg.Connections, MaxConnections: maxConns}
}

// note describes what a qftp transfer did beyond the plain case.
func note(res session.TransferResult) string {
	if res.Attempts > 1 {
		return fmt.Sprintf("%d attempts", res.Attempts)
	}
	return ""
}

// putOnce uploads the large file on a fresh session and checks the
// server's copy.
func (b *bencher) putOnce(ctx context.Context, addr string) (sample, error) {
	c, err := b.dial(ctx, addr)
	if err != nil {
		return sample{}, err
	}
	defer c.Close()
	start := time.Now()
	res, err := c.Put(ctx, b.src, "/put", b.transferOptions())
	dur := time.Since(start)
	if err != nil {
		return sample{}, err
	}
	if err := sameFile(filepath.Join(b.qftp.home, "put"), b.cfg.Size, b.srcSum); err != nil {
		return sample{}, fmt.Errorf("server's copy: %w", err)
	}
	return sample{bytes: b.cfg.Size, dur: dur, links: res.Links, note: note(res)}, nil
}

// getOnce downloads the large file on a fresh session and checks the copy.
// If blackout is set, it blacks out for cfg.Blackout when a third of the
// file has arrived.
func (b *bencher) getOnce(ctx context.Context, addr string, blackout *relay.Relay) (sample, error) {
	c, err := b.dial(ctx, addr)
	if err != nil {
		return sample{}, err
	}
	defer c.Close()
	dst := filepath.Join(b.dir, "got")
	defer os.Remove(dst)
	opt := b.transferOptions()
	var blackedOut atomic.Bool
	if blackout != nil {
		// Progress may be called from several goroutines at once.
		opt.Progress = func(done, total int64) {
			if done >= total/3 && blackedOut.CompareAndSwap(false, true) {
				blackout.Blackout(b.cfg.Blackout)
			}
		}
	}
	start := time.Now()
	res, err := c.Get(ctx, "/large", dst, opt)
	dur := time.Since(start)
	if err != nil {
		return sample{}, err
	}
	if err := sameFile(dst, b.cfg.Size, b.srcSum); err != nil {
		return sample{}, fmt.Errorf("downloaded copy: %w", err)
	}
	s := sample{bytes: b.cfg.Size, dur: dur, links: res.Links, note: note(res)}
	if blackedOut.Load() {
		s.note = strings.TrimPrefix(s.note+fmt.Sprintf("; %v blackout at 1/3", b.cfg.Blackout), "; ")
	}
	return s, nil
}

// smallOnce uploads the small files as a tree named remote (put -r), on a
// fresh session, checks every file and removes the server's copy.
func (b *bencher) smallOnce(ctx context.Context, addr, remote string) (sample, error) {
	c, err := b.dial(ctx, addr)
	if err != nil {
		return sample{}, err
	}
	defer c.Close()
	start := time.Now()
	plan, err := c.PlanPutTree(ctx, b.tree, remote, session.TreeOptions{})
	if err != nil {
		return sample{}, err
	}
	tr := b.transferOptions()
	tr.Resume = session.ResumeAuto // as qftp put -r does; files this small are sent whole anyway
	res, err := c.RunPlan(ctx, plan, session.BatchOptions{Jobs: b.cfg.Jobs, Transfer: tr})
	dur := time.Since(start)
	if err != nil {
		return sample{}, err
	}
	if len(res.Failures) > 0 {
		return sample{}, fmt.Errorf("%d of %d files failed, first %s", len(res.Failures), b.cfg.Files, res.Failures[0])
	}
	if res.Files != b.cfg.Files {
		return sample{}, fmt.Errorf("%d files transferred, want %d", res.Files, b.cfg.Files)
	}
	// The server's copy is on this host: compare it file by file.
	dst := filepath.Join(b.qftp.home, filepath.FromSlash(remote[1:]))
	for _, rel := range b.files {
		p := filepath.FromSlash(rel)
		want, err := os.ReadFile(filepath.Join(b.tree, p))
		if err != nil {
			return sample{}, err
		}
		got, err := os.ReadFile(filepath.Join(dst, p))
		if err != nil {
			return sample{}, fmt.Errorf("server's copy: %w", err)
		}
		if !bytes.Equal(got, want) {
			return sample{}, fmt.Errorf("server's copy of %s differs from the source", rel)
		}
	}
	// Behind the server's back: the user has no quota to account.
	if err := os.RemoveAll(dst); err != nil {
		return sample{}, fmt.Errorf("remove the server's copy: %w", err)
	}
	return sample{bytes: res.Bytes, files: res.Files, dur: dur}, nil
}

// sameFile checks that the file at path has n bytes with SHA-256 sum.
func sameFile(path string, n int64, sum [32]byte) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	got, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if got != n {
		return fmt.Errorf("%d bytes, want %d", got, n)
	}
	if [32]byte(h.Sum(nil)) != sum {
		return errors.New("contents differ from the source (SHA-256)")
	}
	return nil
}

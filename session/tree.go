package session

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"

	"github.com/qftp/qftp/transport"
)

// Job is one file of a multi-file transfer.
type Job struct {
	Remote string // virtual path on the server
	Local  string // local path
	Size   int64  // as listed; a get of a file listed under 16 MiB does not stripe
}

// FileHooks are the callbacks of one file of a batch (see TransferOptions).
type FileHooks struct {
	Progress func(done, total int64)
	Width    func(connections int)
}

// DirJob is a directory a multi-file transfer creates; its modification
// time is set once its files are in.
type DirJob struct {
	Remote, Local string
	Mtime         time.Time
}

// Skip is something a multi-file transfer leaves out, and why. Failed is
// set when it is left out against the user's wish (it could not be read,
// or another file takes its name): the transfer is then incomplete, and
// fails. It is not set for what is left out by rule (a symbolic link, a
// special file).
type Skip struct {
	Path, Reason string
	Failed       bool
	Count        int // entries it stands for, if more than one
}

// Plan is what a recursive or pattern transfer will do.
type Plan struct {
	Put bool // upload (else download)
	// Root is the top directory of a tree copy (local for a get, remote
	// for a put); Named says the destination given is that copy's name,
	// not a directory receiving it, and RootExisted that it was there
	// when planned. Pattern transfers leave them unset.
	Root        string
	Named       bool
	RootExisted bool
	Dirs        []DirJob
	Files       []Job
	Skipped     []Skip
	Bytes       int64 // sum of file sizes
}

// TreeOptions tune PlanPutTree and PlanGetTree.
type TreeOptions struct {
	// AsName makes a destination that is an existing directory the copy's
	// name rather than a directory receiving it (cp -T): a copy that an
	// interrupted run created is resumed in place, not nested inside.
	AsName bool
	// Jobs is how many directory listings a get keeps in flight (0: auto).
	Jobs int
}

// PlanPutTree plans the upload of the local directory root. remote names
// the copy: "" or an existing remote directory receives root under its own
// name (unless opt.AsName), anything else becomes the copy's name.
// Symbolic links are never followed (they could lead out of the tree) and
// are listed in Skipped, as are sockets, devices and other special files.
func (c *Client) PlanPutTree(ctx context.Context, root, remote string, opt TreeOptions) (*Plan, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return nil, &OpError{Op: "put", Path: root, Err: unwrapPath(err)}
	}
	if !fi.IsDir() {
		return nil, &OpError{Op: "put", Path: root, Err: errors.New("not a directory")}
	}
	base := filepath.Base(filepath.Clean(root))
	dest := path.Clean(c.absRemote(remote))
	p := &Plan{Put: true}
	if remote == "" || strings.HasSuffix(remote, "/") && !opt.AsName {
		dest = joinRemote(dest, base)
	} else {
		e, _, err := c.Stat(ctx, remote)
		isDir := err == nil && e.Type == transport.TypeDir
		if err == nil && !isDir && e.Type != transport.TypeSymlink {
			// cp -r refuses too: a tree cannot go where a file is.
			return nil, &OpError{Op: "put", Path: dest, Err: errors.New("exists and is not a directory")}
		}
		p.Named = !isDir || opt.AsName
		p.RootExisted = err == nil
		if !p.Named {
			dest = joinRemote(dest, base)
		}
	}
	p.Root = dest
	err = filepath.WalkDir(root, func(lp string, d fs.DirEntry, err error) error {
		if err != nil {
			p.Skipped = append(p.Skipped, Skip{Path: lp, Reason: unwrapPath(err).Error(), Failed: true})
			if d != nil && d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, lp)
		rp := dest
		if rel != "." {
			rp = joinRemote(dest, filepath.ToSlash(rel))
		}
		switch t := d.Type(); {
		case t.IsDir():
			info, err := d.Info()
			if err != nil {
				p.Skipped = append(p.Skipped, Skip{Path: lp, Reason: unwrapPath(err).Error(), Failed: true})
				return filepath.SkipDir
			}
			p.Dirs = append(p.Dirs, DirJob{Remote: rp, Local: lp, Mtime: info.ModTime()})
		case t&fs.ModeSymlink != 0:
			p.Skipped = append(p.Skipped, Skip{Path: lp, Reason: "symbolic link not followed"})
		case t.IsRegular():
			info, err := d.Info()
			if err != nil {
				p.Skipped = append(p.Skipped, Skip{Path: lp, Reason: unwrapPath(err).Error(), Failed: true})
				return nil
			}
			p.Files = append(p.Files, Job{Remote: rp, Local: lp, Size: info.Size()})
			p.Bytes += info.Size()
		default:
			p.Skipped = append(p.Skipped, Skip{Path: lp, Reason: "not a regular file"})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func joinRemote(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// PlanGetTree plans the download of the remote directory root into local:
// "" or an existing local directory receives root under its own name
// (unless opt.AsName), anything else becomes the copy's name. Remote
// symbolic links are skipped.
func (c *Client) PlanGetTree(ctx context.Context, root, local string, opt TreeOptions) (*Plan, error) {
	e, vroot, err := c.Stat(ctx, root)
	if err != nil {
		return nil, relabel("get", err)
	}
	if e.Type != transport.TypeDir {
		return nil, &OpError{Op: "get", Path: vroot, Err: errors.New("not a directory")}
	}
	dest := local
	p := &Plan{}
	fi, err := os.Stat(local)
	p.RootExisted = local != "" && err == nil
	p.Named = local != "" && (err != nil || !fi.IsDir() || opt.AsName)
	if p.Named {
		dest = filepath.Clean(local)
	} else {
		dest = filepath.Join(local, path.Base(vroot))
	}
	p.Root = dest
	// One clear error, not one per file and directory of the tree.
	if fi, err := os.Stat(dest); err == nil && !fi.IsDir() {
		return nil, &OpError{Op: "get", Path: vroot, Err: fmt.Errorf("local %s is not a directory", dest)}
	}
	var mu sync.Mutex
	p.Dirs = append(p.Dirs, DirJob{Remote: vroot, Local: dest, Mtime: time.Unix(0, e.Mtime)})
	level := []DirJob{p.Dirs[0]}
	for len(level) > 0 {
		var next []DirJob
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(cmp.Or(max(opt.Jobs, 0), autoJobs))
		for _, d := range level {
			g.Go(func() error {
				entries, hidden, err := c.List(gctx, d.Remote)
				if err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				if hidden.Count > 0 {
					p.Skipped = append(p.Skipped, unnamableSkip(hidden.Count, "of "+d.Remote))
				}
				for _, e := range entries {
					// The names come from the server: never let one lead
					// out of the target directory.
					if e.Name == "" || e.Name == "." || e.Name == ".." || strings.ContainsAny(e.Name, "/\\\x00") {
						p.Skipped = append(p.Skipped, Skip{Path: d.Remote + "/" + e.Name, Reason: "unsafe name from the server", Failed: true})
						continue
					}
					rp, lp := joinRemote(d.Remote, e.Name), filepath.Join(d.Local, e.Name)
					switch e.Type {
					case transport.TypeDir:
						dj := DirJob{Remote: rp, Local: lp, Mtime: time.Unix(0, e.Mtime)}
						p.Dirs = append(p.Dirs, dj)
						next = append(next, dj)
					case transport.TypeFile:
						p.Files = append(p.Files, Job{Remote: rp, Local: lp, Size: e.Size})
						p.Bytes += e.Size
					case transport.TypeSymlink:
						p.Skipped = append(p.Skipped, Skip{Path: rp, Reason: "symbolic link not followed"})
					default:
						p.Skipped = append(p.Skipped, Skip{Path: rp, Reason: "not a regular file"})
					}
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		level = next
	}
	sort.Slice(p.Dirs, func(i, j int) bool { return p.Dirs[i].Remote < p.Dirs[j].Remote })
	sort.Slice(p.Files, func(i, j int) bool { return p.Files[i].Remote < p.Files[j].Remote })
	return p, nil
}

// BatchOptions tune RunPlan.
type BatchOptions struct {
	// Jobs is how many files move at once, each on its own stream. Zero
	// means auto: up to autoJobs files, as long as the files running
	// total at most autoInFlight bytes (so many small files overlap their
	// round trips, and big ones do not all compete for the link and the
	// disk at once).
	Jobs int
	// Transfer applies to every file; its Progress (and Width, if Start
	// gives one) is replaced per file by what Start returns.
	Transfer TransferOptions
	// Start, if set, is called as a file starts and may return its
	// callbacks.
	Start func(Job) FileHooks
	// Done, if set, is called when a file has finished or failed.
	Done func(Job, TransferResult, error)

	inFlight int64 // auto jobs' byte budget; 0: autoInFlight (tests set it)
}

// budget is the bytes that auto jobs keep in flight, and the most one
// file counts. A file counts at most a quarter: four big files still run
// at once. Under a rate cap the files running share the rate, so the
// budget is about 2 s worth of it and a file may count all of it: files
// then finish one after another, and a batch interrupted midway leaves
// whole files rather than many partial ones (small ones are sent again),
// while small files still overlap their round trips. The cap is the
// lower of the batch's Limiter and serverRate, the server's cap on the
// user (bytes/s, 0: none).
func (o BatchOptions) budget(serverRate int64) (budget, most int64) {
	if o.inFlight > 0 {
		return o.inFlight, o.inFlight / 4
	}
	bps := float64(serverRate)
	if lim, ok := o.Transfer.Limiter.(interface{ Limit() rate.Limit }); ok {
		if l := float64(lim.Limit()); l > 0 && (bps <= 0 || l < bps) {
			bps = l
		}
	}
	if bps > 0 && bps < autoInFlight/2 {
		b := max(int64(2*bps), 1<<20)
		return b, b
	}
	return autoInFlight, autoInFlight / 4
}

// Failure is a file of a batch that did not make it.
type Failure struct {
	Path string
	Err  error
}

// BatchResult sums up RunPlan.
type BatchResult struct {
	Files    int   // files transferred, counting Same
	Same     int   // of them, files the destination already held (TransferResult.Same)
	Bytes    int64 // total size of the files copied (not counting Same)
	Resumed  int64 // of Bytes, what partial copies already held
	Failures []Failure
	Duration time.Duration
}

// Auto jobs for batches (see BatchOptions.Jobs).
const (
	autoJobs     = 256
	autoInFlight = 64 << 20
)

// Auto width for batches (see RunPlan).
const (
	batchLinks   = 4
	batchPerLink = 64
)

// RunPlan creates the plan's directories, transfers its files with up to
// opt.Jobs at once, and finally sets the directories' modification times.
// A failed file does not stop the others: failures are collected in the
// result. The error is only for what stops the whole batch (ctx ended).
func (c *Client) RunPlan(ctx context.Context, p *Plan, opt BatchOptions) (BatchResult, error) {
	start := time.Now()
	var res BatchResult
	var mu sync.Mutex
	// A file that could not reconnect stops the batch: the others would
	// each spend the retry time against the same dead server.
	parent := ctx
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	stopIfLost := func(err error) {
		if lost := (*ConnLostError)(nil); errors.As(err, &lost) {
			stop(err)
		}
	}
	// end returns the result; a batch that stopped early says so.
	end := func() (BatchResult, error) {
		sort.Slice(res.Failures, func(i, j int) bool { return res.Failures[i].Path < res.Failures[j].Path })
		res.Duration = time.Since(start)
		if parent.Err() != nil {
			return res, parent.Err()
		}
		if cause := context.Cause(ctx); ctx.Err() != nil && cause != nil {
			return res, &BatchStoppedError{Done: res.Files, Total: len(p.Files), Cause: cause}
		}
		return res, nil
	}
	fail := func(path string, err error) {
		mu.Lock()
		res.Failures = append(res.Failures, Failure{path, err})
		mu.Unlock()
	}
	// failed records what ended a file or directory early: its own error,
	// or, once the batch has stopped, that it stopped with it (a Ctrl-C
	// needs no list: everything not done is interrupted).
	failed := func(path string, err error) {
		switch {
		case ctx.Err() == nil:
			fail(path, err)
		case parent.Err() == nil && errors.Is(err, context.Canceled):
			fail(path, errStoppedWithBatch)
		case parent.Err() == nil:
			fail(path, err) // its own failure, at the moment the batch stopped
		}
		stopIfLost(err)
	}
	jobs := opt.Jobs
	budget, most := opt.budget(c.serverRate.Load())
	var inFlight *semaphore.Weighted
	if jobs <= 0 {
		jobs = autoJobs
		inFlight = semaphore.NewWeighted(budget)
	}
	// Directories: parents before children, one depth at a time, the
	// directories of a depth in parallel.
	badDirs := map[string]bool{}
	for _, level := range dirLevels(p.Dirs) {
		g := errgroup.Group{}
		g.SetLimit(jobs)
		for _, d := range level {
			g.Go(func() error {
				var err error
				if p.Put {
					err = c.Mkdir(ctx, d.Remote, true)
				} else {
					err = os.MkdirAll(d.Local, 0o755)
				}
				if err != nil {
					failed(dirName(p.Put, d), err)
					mu.Lock()
					badDirs[d.Remote] = true
					mu.Unlock()
				}
				return nil
			})
		}
		_ = g.Wait()
		if ctx.Err() != nil {
			return end()
		}
	}
	// The files go round several connections: on a lossy link each
	// connection's window limits alone, and on a fast one each
	// connection's packet handling runs on its own core. Auto width uses
	// one connection per batchPerLink files, up to batchLinks.
	links := []*link{c.link()}
	n := opt.Transfer.Connections
	if n == ConnectionsAuto {
		n = min(batchLinks, len(p.Files)/batchPerLink)
	}
	if n > 1 && len(p.Files) > 1 {
		c.mu.Lock()
		c.striping++ // the joined connections stay while the batch runs
		c.mu.Unlock()
		defer c.closeIdleExtras()
		if _, err := c.Widen(ctx, min(n, len(p.Files))); err != nil {
			c.log.Info("could not open all connections", "err", err)
		}
		c.mu.Lock()
		links = append(links, c.extra...)
		c.mu.Unlock()
	}
	g := errgroup.Group{}
	g.SetLimit(jobs)
	for i, j := range p.Files {
		if ctx.Err() != nil {
			break
		}
		if badDirs[path.Dir(j.Remote)] {
			fail(fileName(p.Put, j), errors.New("its directory could not be created"))
			continue
		}
		weight := min(max(j.Size, 1), most)
		if inFlight != nil && inFlight.Acquire(ctx, weight) != nil {
			break
		}
		g.Go(func() error {
			if inFlight != nil {
				defer inFlight.Release(weight)
			}
			if ctx.Err() != nil {
				return nil // stopped while this file waited for its turn
			}
			to := opt.Transfer
			to.via = links[i%len(links)]
			to.listedSmall = j.Size < stripeMin
			to.Progress = nil
			if opt.Start != nil {
				h := opt.Start(j)
				to.Progress = h.Progress
				if h.Width != nil {
					to.Width = h.Width
				}
			}
			var r TransferResult
			var err error
			if p.Put {
				r, err = c.PutAs(ctx, j.Local, j.Remote, to)
			} else {
				r, err = c.Get(ctx, j.Remote, j.Local, to)
			}
			if opt.Done != nil {
				opt.Done(j, r, err)
			}
			if err != nil {
				failed(fileName(p.Put, j), err)
				return nil
			}
			mu.Lock()
			res.Files++
			if r.Same {
				res.Same++
			} else {
				res.Bytes += r.Bytes
				res.Resumed += r.Resumed
			}
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	if ctx.Err() != nil {
		return end()
	}
	// Directory times last (writing into a directory changes its time),
	// deepest first.
	for i := len(p.Dirs) - 1; i >= 0 && ctx.Err() == nil; i-- {
		d := p.Dirs[i]
		if badDirs[d.Remote] {
			continue
		}
		var err error
		if p.Put {
			err = c.SetMtime(ctx, d.Remote, d.Mtime)
		} else {
			err = os.Chtimes(d.Local, d.Mtime, d.Mtime)
		}
		if err != nil {
			fail(dirName(p.Put, d), err)
			stopIfLost(err)
		}
	}
	return end()
}

// errStoppedWithBatch is the failure of a file that was running when its
// batch stopped (see BatchStoppedError).
var errStoppedWithBatch = errors.New("stopped before it finished, with the batch")

// BatchStoppedError ends a batch that stopped early because a file could
// not reconnect (Cause, a *ConnLostError, which the batch's failures hold
// too). Its message leaves the cause to them.
type BatchStoppedError struct {
	Done, Total int
	Cause       error
}

func (e *BatchStoppedError) Error() string {
	why := "could not reconnect to the server"
	if lost := (*ConnLostError)(nil); errors.As(e.Cause, &lost) && lost.Tries == 0 {
		why = "the server ended the session"
	}
	return fmt.Sprintf("stopped after %d of %d files: %s", e.Done, e.Total, why)
}

func (e *BatchStoppedError) Unwrap() error { return e.Cause }

func fileName(put bool, j Job) string {
	if put {
		return j.Local
	}
	return j.Remote
}

func dirName(put bool, d DirJob) string {
	if put {
		return d.Local
	}
	return d.Remote
}

// dirLevels groups directories by depth, shallowest first.
func dirLevels(dirs []DirJob) [][]DirJob {
	byDepth := map[int][]DirJob{}
	maxDepth := 0
	for _, d := range dirs {
		n := strings.Count(d.Remote, "/")
		byDepth[n] = append(byDepth[n], d)
		maxDepth = max(maxDepth, n)
	}
	var out [][]DirJob
	for i := 0; i <= maxDepth; i++ {
		if len(byDepth[i]) > 0 {
			out = append(out, byDepth[i])
		}
	}
	return out
}

// unnamableSkip reports n remote files (of a directory, matching a
// pattern: where) that the server did not list because no client can name
// them: a get that should copy them is incomplete.
func unnamableSkip(n int, where string) Skip {
	what := "1 entry"
	if n > 1 {
		what = fmt.Sprintf("%d entries", n)
	}
	return Skip{Path: what + " " + where, Reason: unnamableReason, Failed: true, Count: n}
}

const unnamableReason = Unnamable + ", which qftp cannot transfer (they can be renamed on the server itself)"

// Unnamable says what makes a remote name one qftp cannot use (see
// Hidden), for messages.
const Unnamable = "names that are not valid UTF-8 or contain a backslash"

// PlanGlobGet plans the download of the remote files matching patterns
// into the local directory dir. Matches that are directories are skipped
// (use a recursive get for those).
func (c *Client) PlanGlobGet(ctx context.Context, patterns []string, dir string) (*Plan, error) {
	p := &Plan{}
	seen := map[string]bool{}
	dest := map[string]string{} // local file -> remote file that goes there
	for _, pat := range patterns {
		var entries []transport.Entry
		var unnamable int
		var err error
		if e, vp, serr := c.Stat(ctx, pat); serr == nil {
			// A name that exists is that file, pattern characters and all
			// (there is no escaping them: backslashes are not allowed).
			e.Name = vp
			entries = []transport.Entry{e}
		} else if entries, unnamable, err = c.Glob(ctx, pat); err != nil {
			return nil, err
		}
		if unnamable > 0 {
			s := unnamableSkip(unnamable, "matching "+pat)
			if len(entries) == 0 {
				return nil, &OpError{Op: "mget", Path: pat, Err: fmt.Errorf("no match qftp can transfer: %d with %s", unnamable, unnamableReason)}
			}
			p.Skipped = append(p.Skipped, s)
		}
		if len(entries) == 0 {
			return nil, &OpError{Op: "mget", Path: pat, Err: errors.New("no match")}
		}
		for _, e := range entries {
			if seen[e.Name] {
				continue
			}
			seen[e.Name] = true
			if e.Type != transport.TypeFile {
				p.Skipped = append(p.Skipped, notRegularSkip(e.Name, e.Type == transport.TypeDir, "get"))
				continue
			}
			local := filepath.Join(dir, path.Base(e.Name))
			if other, ok := dest[local]; ok {
				p.Skipped = append(p.Skipped, Skip{Path: e.Name, Reason: "same name as " + other, Failed: true})
				continue
			}
			dest[local] = e.Name
			p.Files = append(p.Files, Job{Remote: e.Name, Local: local, Size: e.Size})
			p.Bytes += e.Size
		}
	}
	return p, nothingMatched("mget", patterns, p)
}

// notRegularSkip skips a match of mget or mput that is not a regular file.
func notRegularSkip(name string, dir bool, op string) Skip {
	if dir {
		return Skip{Path: name, Reason: "a directory (" + op + " -r copies one)"}
	}
	return Skip{Path: name, Reason: "not a regular file"}
}

// nothingMatched fails a plan of op in which the patterns matched only
// what op skips, such as directories: a command that copies nothing it
// was asked for has failed (a pattern without any match fails earlier).
func nothingMatched(op string, patterns []string, p *Plan) error {
	if len(p.Files) > 0 || len(p.Skipped) == 0 {
		return nil
	}
	what := make([]string, 0, len(p.Skipped))
	for _, s := range p.Skipped {
		what = append(what, s.Path+": "+s.Reason)
	}
	return &OpError{Op: op, Path: strings.Join(patterns, " "), Err: errors.New("no regular file matches (" + strings.Join(what, "; ") + ")")}
}

// PlanGlobPut plans the upload of the local files matching patterns (as
// filepath.Glob expands them) into the remote directory dir.
func (c *Client) PlanGlobPut(patterns []string, dir string) (*Plan, error) {
	p := &Plan{Put: true}
	seen := map[string]bool{}
	dest := map[string]string{} // remote file -> local file that goes there
	for _, pat := range patterns {
		matches, err := filepath.Glob(pat)
		if _, lerr := os.Lstat(pat); lerr == nil {
			matches, err = []string{pat}, nil // that file, as for mget
		}
		if err != nil {
			return nil, &OpError{Op: "mput", Path: pat, Err: err}
		}
		if len(matches) == 0 {
			return nil, &OpError{Op: "mput", Path: pat, Err: errors.New("no match")}
		}
		for _, m := range matches {
			if seen[m] {
				continue
			}
			seen[m] = true
			fi, err := os.Lstat(m)
			switch {
			case err != nil:
				p.Skipped = append(p.Skipped, Skip{Path: m, Reason: unwrapPath(err).Error(), Failed: true})
			case !fi.Mode().IsRegular():
				p.Skipped = append(p.Skipped, notRegularSkip(m, fi.IsDir(), "put"))
			default:
				remote := joinRemote(c.absRemote(dir), filepath.Base(m))
				if other, ok := dest[remote]; ok {
					p.Skipped = append(p.Skipped, Skip{Path: m, Reason: "same name as " + other, Failed: true})
					continue
				}
				dest[remote] = m
				p.Files = append(p.Files, Job{Remote: remote, Local: m, Size: fi.Size()})
				p.Bytes += fi.Size()
			}
		}
	}
	return p, nothingMatched("mput", patterns, p)
}

// String describes a failure: "put a/b.txt: file exists".
func (f Failure) String() string { return fmt.Sprintf("%s: %v", f.Path, f.Err) }

// RemoveTree removes the file or link p, or the directory p with all it
// holds, deepest first and up to 16 removals at once. Links are removed,
// never followed. It goes on past what it cannot remove, calling fail for
// each (from several goroutines, one at a time), and returns how many
// files and directories it removed; a directory that kept something is
// not reported again. It stops when ctx ends, and at the first failure to
// reconnect (reported once): the server is gone, and every other removal
// would spend the retry time again. (A caller's cancel is not reported.)
// A directory left with hidden partial uploads goes as by Rmdir.
func (c *Client) RemoveTree(ctx context.Context, p string, fail func(path string, err error)) int {
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var mu sync.Mutex
	removed := 0
	// report records one removal's outcome; it reports whether it worked.
	report := func(path string, err error) bool {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			removed++
		case ctx.Err() != nil: // stopped: said once, below
		default:
			fail(path, err)
			if lost := (*ConnLostError)(nil); errors.As(err, &lost) {
				stop(err)
			}
		}
		return err == nil
	}
	sem := make(chan struct{}, 16)
	// tree removes p and reports whether all of it went.
	var tree func(p string, depth int) bool
	tree = func(p string, depth int) bool {
		if ctx.Err() != nil {
			return false
		}
		err := c.Remove(ctx, p)
		if err == nil || !errors.Is(err, syscall.EISDIR) || depth > maxTreeDepth {
			return report(p, err)
		}
		entries, _, err := c.List(ctx, p) // names it cannot list, Rmdir reports
		if err != nil {
			return report(p, err)
		}
		if len(entries) == 1 && strings.Contains(entries[0].Name, "/") {
			// p was swapped for a file since (List names a file as
			// asked): rm -r removes what is there now.
			return report(p, c.Remove(ctx, p))
		}
		var wg sync.WaitGroup
		var kept atomic.Bool
		for _, e := range entries {
			if ctx.Err() != nil {
				break
			}
			child := joinRemote(p, e.Name)
			if e.Type == transport.TypeDir {
				if !tree(child, depth+1) { // one directory at a time: bounded goroutines
					kept.Store(true)
				}
				continue
			}
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if ctx.Err() != nil || !report(child, c.Remove(ctx, child)) {
					kept.Store(true)
				}
			})
		}
		wg.Wait()
		if ctx.Err() != nil {
			return false
		}
		if kept.Load() {
			// Its Rmdir can only fail ("not empty": what it kept was
			// reported), but drops the abandoned partial uploads in it
			// on the way, which nothing else can name.
			_ = c.Rmdir(ctx, p)
			return false
		}
		return report(p, relabel("rm", c.Rmdir(ctx, p)))
	}
	tree(path.Clean(c.absRemote(p)), 0)
	return removed
}

// maxTreeDepth bounds RemoveTree's recursion; a path of at most 4096
// bytes cannot nest deeper.
const maxTreeDepth = 2048

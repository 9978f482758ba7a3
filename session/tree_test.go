package session_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/sessiontest"
)

// makeTree writes a tree with nested and empty directories, Unicode names
// and empty files, and returns its files' contents by relative path.
func makeTree(t *testing.T, root string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{
		"a.txt":                  []byte("alpha"),
		"empty":                  nil,
		"docs/2024/report.pdf":   randomBytes(t, 300<<10),
		"docs/2024/文件 名.txt":     []byte("unicode"),
		"docs/😀/x":               []byte("emoji dir"),
		"deep/a/b/c/d/e/f.bin":   randomBytes(t, 5000),
		"spaces in name/ z .txt": []byte("spaces"),
	}
	for p, data := range files {
		sessiontest.WriteFile(t, filepath.Join(root, p), data)
	}
	for _, d := range []string{"empty dir", "docs/empty"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Distinct, old mtimes, so that keeping them is visible.
	old := time.Date(2020, 2, 3, 4, 5, 6, 0, time.UTC)
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			old = old.Add(time.Minute)
			_ = os.Chtimes(p, old, old)
		}
		return nil
	})
	return files
}

// treeOf lists a tree: relative path -> contents ("/" suffix for dirs),
// and mtimes.
func treeOf(t *testing.T, root string) (map[string]string, map[string]time.Time) {
	t.Helper()
	out := map[string]string{}
	mt := map[string]time.Time{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, _ := d.Info()
		mt[rel] = fi.ModTime()
		if d.IsDir() {
			out[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, mt
}

func TestTreeRoundTrip(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "tree")
	ctx := t.Context()
	src := filepath.Join(t.TempDir(), "project")
	makeTree(t, src)
	// A symlink leading out of the tree is not followed.
	if err := os.Symlink("/etc", filepath.Join(src, "escape")); err != nil {
		t.Fatal(err)
	}

	p, err := c.PlanPutTree(ctx, src, "", session.TreeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Skipped) != 1 || !strings.HasSuffix(p.Skipped[0].Path, "escape") {
		t.Fatalf("skipped %v", p.Skipped)
	}
	res, err := c.RunPlan(ctx, p, session.BatchOptions{Jobs: 3})
	if err != nil || len(res.Failures) != 0 || res.Files != 7 {
		t.Fatalf("put -r: %+v, %v", res, err)
	}
	_ = os.Remove(filepath.Join(src, "escape"))
	want, wantMt := treeOf(t, src)
	got, gotMt := treeOf(t, filepath.Join(home, "project"))
	if !mapsEqual(want, got) {
		t.Fatalf("server tree differs:\n got %v\nwant %v", keys(got), keys(want))
	}
	for k, m := range wantMt {
		if k != "." && !gotMt[k].Equal(m) {
			t.Errorf("mtime of %s: %v, want %v", k, gotMt[k], m)
		}
	}
	// Run again, every file is already there.
	res, err = c.RunPlan(ctx, p, session.BatchOptions{Jobs: 3})
	if err != nil || len(res.Failures) != 0 || res.Files != 7 || res.Same != 7 {
		t.Fatalf("put -r again: %+v, %v", res, err)
	}

	dst := t.TempDir()
	p, err = c.PlanGetTree(ctx, "project", dst, session.TreeOptions{Jobs: 4})
	if err != nil {
		t.Fatal(err)
	}
	res, err = c.RunPlan(ctx, p, session.BatchOptions{Jobs: 4})
	if err != nil || len(res.Failures) != 0 || res.Files != 7 {
		t.Fatalf("get -r: %+v, %v", res, err)
	}
	got, gotMt = treeOf(t, filepath.Join(dst, "project"))
	if !mapsEqual(want, got) {
		t.Fatalf("downloaded tree differs:\n got %v\nwant %v", keys(got), keys(want))
	}
	for k, m := range wantMt {
		if k != "." && !gotMt[k].Equal(m) {
			t.Errorf("mtime of %s after get: %v, want %v", k, gotMt[k], m)
		}
	}

	// Again: every file is already there, so nothing is copied.
	p, _ = c.PlanGetTree(ctx, "project", dst, session.TreeOptions{Jobs: 4})
	res, err = c.RunPlan(ctx, p, session.BatchOptions{Jobs: 4})
	if err != nil || len(res.Failures) != 0 || res.Same != 7 || res.Files != 7 || res.Bytes != 0 {
		t.Fatalf("get -r again: %+v, %v", res, err)
	}
	// A file that changed fails alone and the rest of the batch still
	// runs; -f replaces it.
	var changed string
	for k := range want {
		if k != "." && want[k] != "" {
			changed = filepath.Join(dst, "project", filepath.FromSlash(k))
			break
		}
	}
	if err := os.WriteFile(changed, []byte("changed here"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err = c.RunPlan(ctx, p, session.BatchOptions{Jobs: 4})
	if err != nil || len(res.Failures) != 1 || res.Same != 6 || !strings.Contains(res.Failures[0].Err.Error(), "exists") {
		t.Fatalf("get -r over a changed file: %+v, %v", res, err)
	}
	res, err = c.RunPlan(ctx, p, session.BatchOptions{Jobs: 4, Transfer: session.TransferOptions{Force: true}})
	if err != nil || len(res.Failures) != 0 {
		t.Fatalf("get -r -f: %+v, %v", res.Failures, err)
	}
}

// get -r into a local file fails once, before anything is listed.
func TestGetTreeIntoFile(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "tif")
	sessiontest.WriteFile(t, filepath.Join(home, "tree", "a", "b"), []byte("b"))
	file := filepath.Join(t.TempDir(), "three.bin")
	sessiontest.WriteFile(t, file, []byte("mine"))
	for _, dst := range []string{file, filepath.Dir(file)} {
		if dst != file {
			// A file named like the tree inside the destination.
			sessiontest.WriteFile(t, filepath.Join(dst, "tree"), []byte("mine"))
		}
		_, err := c.PlanGetTree(t.Context(), "tree", dst, session.TreeOptions{Jobs: 4})
		if err == nil || !strings.Contains(err.Error(), "is not a directory") {
			t.Errorf("get -r tree %s: %v", dst, err)
		}
	}
}

func TestPartialFailure(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "pf")
	src := t.TempDir()
	for _, n := range []string{"a", "b", "c"} {
		sessiontest.WriteFile(t, filepath.Join(src, n), []byte(n))
	}
	// b exists remotely: its upload fails, a and c go through.
	sessiontest.WriteFile(t, filepath.Join(home, "b"), []byte("old"))
	p, err := c.PlanGlobPut([]string{filepath.Join(src, "*")}, "/")
	if err != nil || len(p.Files) != 3 {
		t.Fatalf("plan: %+v, %v", p, err)
	}
	res, err := c.RunPlan(t.Context(), p, session.BatchOptions{Jobs: 2})
	if err != nil || res.Files != 2 || len(res.Failures) != 1 || !strings.Contains(res.Failures[0].Err.Error(), "file exists") {
		t.Fatalf("result %+v, %v", res, err)
	}
	if string(sessiontest.ReadFile(t, filepath.Join(home, "b"))) != "old" {
		t.Fatal("b replaced")
	}
}

func TestGlob(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "glo")
	for _, f := range []string{"a.txt", "b.txt", "c.log", ".hidden.txt", "d/x.txt", "d/y.log", "e/x.txt", `d/un\named.txt`, `un\named.txt`, `un\other.txt`, `un\dir/x.txt`} {
		sessiontest.WriteFile(t, filepath.Join(home, f), []byte(f))
	}
	outside := t.TempDir()
	sessiontest.WriteFile(t, filepath.Join(outside, "secret.txt"), []byte("no"))
	if err := os.Symlink(outside, filepath.Join(home, "out")); err != nil {
		t.Fatal(err)
	}
	// Names with a backslash cannot be addressed: glob counts those that
	// match (as what they are where they are), so that mget can say what
	// it leaves out.
	tests := []struct {
		pattern   string
		want      []string
		unnamable int
	}{
		{"*.txt", []string{"/a.txt", "/b.txt"}, 2},
		{".*.txt", []string{"/.hidden.txt"}, 0},
		{"?.log", []string{"/c.log"}, 0},
		{"*/x.txt", []string{"/d/x.txt", "/e/x.txt"}, 1}, // un\dir may hold one (it does)
		{"*/*.log", []string{"/d/y.log"}, 1},             // un\dir may hold one; un\named.txt is no directory
		{"?/*.log", []string{"/d/y.log"}, 0},
		{"/d/*", []string{"/d/x.txt", "/d/y.log"}, 1},
		{"*", []string{"/a.txt", "/b.txt", "/c.log", "/d", "/e", "/out"}, 2}, // un\dir: a directory at the end is no file to leave out
		{"[ab].txt", []string{"/a.txt", "/b.txt"}, 0},
		{"nomatch*", nil, 0},
		{"out/*", nil, 0}, // a symlink leading out matches nothing below it
		{"a.txt", []string{"/a.txt"}, 0},
		{"*/", []string{"/d", "/e"}, 1}, // a trailing slash: directories only, as in a shell (un\dir, not the files)
		{"?.txt/", nil, 0},
		{"un*/", nil, 1}, // un\dir is left out, un\named.txt is no directory
	}
	for _, tt := range tests {
		entries, unnamable, err := c.Glob(t.Context(), tt.pattern)
		if err != nil {
			t.Fatalf("glob %q: %v", tt.pattern, err)
		}
		if unnamable != tt.unnamable {
			t.Errorf("glob %q: %d unnamable, want %d", tt.pattern, unnamable, tt.unnamable)
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Name)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("glob %q = %q, want %q", tt.pattern, got, tt.want)
		}
	}
	for _, bad := range []string{"../*", "[", "/../../etc/*"} {
		if _, _, err := c.Glob(t.Context(), bad); err == nil {
			t.Errorf("glob %q succeeded", bad)
		}
	}
	p, err := c.PlanGlobGet(context.Background(), []string{"*.txt", "d/*.txt"}, t.TempDir())
	if err != nil || len(p.Files) != 3 {
		t.Fatalf("mget plan %+v, %v", p, err)
	}
	res, err := c.RunPlan(t.Context(), p, session.BatchOptions{})
	if err != nil || res.Files != 3 || !bytes.Equal(sessiontest.ReadFile(t, p.Files[0].Local), []byte("a.txt")) {
		t.Fatalf("mget: %+v, %v", res, err)
	}
	// Patterns that match only directories copy nothing: a failure that
	// says why, for mget and mput alike.
	if _, err := c.PlanGlobGet(t.Context(), []string{"[de]"}, t.TempDir()); err == nil || err.Error() != "mget [de]: no regular file matches (/d: a directory (get -r copies one); /e: a directory (get -r copies one))" {
		t.Errorf("mget of directories: %v", err)
	}
	if _, err := c.PlanGlobPut([]string{filepath.Join(home, "[de]")}, "/"); err == nil || !strings.Contains(err.Error(), "no regular file matches") || !strings.Contains(err.Error(), "put -r copies one") {
		t.Errorf("mput of directories: %v", err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Auto jobs run many small files at once but only four big ones (big
// against the byte budget).
func TestAutoJobs(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	ts.AddUser("aj", "pw")
	c := ts.Login(t, "aj", "pw")
	src := t.TempDir()
	for i := range 40 {
		sessiontest.WriteFile(t, filepath.Join(src, "small", fmt.Sprintf("s%02d", i)), make([]byte, 100))
	}
	for i := range 8 {
		sessiontest.WriteFile(t, filepath.Join(src, "big", fmt.Sprintf("b%d", i)), make([]byte, 256<<10))
	}
	for _, tc := range []struct {
		dir       string
		atMostMax int // the most files seen running at once may not pass this
		atLeast   int // ... and must reach this
	}{
		{"small", 40, 2},
		{"big", 4, 1},
	} {
		p, err := c.PlanPutTree(t.Context(), filepath.Join(src, tc.dir), "/"+tc.dir, session.TreeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		running, most := 0, 0
		opt := session.BatchOptions{
			Start: func(session.Job) session.FileHooks {
				mu.Lock()
				running++
				most = max(most, running)
				mu.Unlock()
				return session.FileHooks{}
			},
			Done: func(session.Job, session.TransferResult, error) {
				mu.Lock()
				running--
				mu.Unlock()
			},
		}
		// Files of 256 KiB against a budget of 1 MiB: four at once.
		session.SetBatchInFlight(&opt, 1<<20)
		res, err := c.RunPlan(t.Context(), p, opt)
		if err != nil || len(res.Failures) > 0 {
			t.Fatalf("%s: %v %v", tc.dir, err, res.Failures)
		}
		if most > tc.atMostMax || most < tc.atLeast {
			t.Fatalf("%s: up to %d files ran at once, want %d..%d", tc.dir, most, tc.atLeast, tc.atMostMax)
		}
	}
}

// TestTreeGetNoStatPerFile checks that a tree get with auto connections
// does not ask the control stream about each small file (the server
// answers control requests one at a time, so that made many small files
// slow to get).
func TestTreeGetNoStatPerFile(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	ts.AddUser("ns", "pw")
	const files = 30
	for i := range files {
		sessiontest.WriteFile(t, filepath.Join(ts.HomeDir, "ns", "tree", fmt.Sprintf("f%02d", i)), []byte(fmt.Sprint(i)))
	}
	c := ts.Login(t, "ns", "pw")
	p, err := c.PlanGetTree(t.Context(), "tree", filepath.Join(t.TempDir(), "tree"), session.TreeOptions{Jobs: 4})
	if err != nil {
		t.Fatal(err)
	}
	before := session.ControlRequests(c)
	res, err := c.RunPlan(t.Context(), p, session.BatchOptions{Transfer: session.TransferOptions{Connections: session.ConnectionsAuto}})
	if err != nil || len(res.Failures) > 0 || res.Files != files {
		t.Fatalf("%v %v: %d files", err, res.Failures, res.Files)
	}
	if n := session.ControlRequests(c) - before; n >= files {
		t.Fatalf("%d control requests for %d files", n, files)
	}
}

// A batch whose server went away for good stops once a file could not
// reconnect, instead of spending the retry time again on each file left.
func TestBatchStopsWhenServerGone(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, _ := ts.User(t, "gone")
	src := t.TempDir()
	for i := range 5 {
		sessiontest.WriteFile(t, filepath.Join(src, fmt.Sprintf("f%d", i)), randomBytes(t, 1<<20))
	}
	p, err := c.PlanGlobPut([]string{filepath.Join(src, "*")}, "/")
	if err != nil || len(p.Files) != 5 {
		t.Fatalf("plan: %+v, %v", p, err)
	}
	var once sync.Once
	started := make(chan struct{})
	// Two files run at once: both are listed as failed, whichever of them
	// gives up reconnecting first and stops the batch.
	opt := session.BatchOptions{Jobs: 2, Transfer: session.TransferOptions{Limiter: rate.NewLimiter(rate.Limit(1<<20), 64<<10)},
		Start: func(session.Job) session.FileHooks {
			return session.FileHooks{Progress: func(done, total int64) {
				if done > 0 {
					once.Do(func() { close(started) })
				}
			}}
		}}
	go func() {
		<-started
		_ = ts.Stop(0)
	}()
	res, err := c.RunPlan(t.Context(), p, opt)
	var lost *session.ConnLostError
	if !errors.As(err, &lost) || len(res.Failures) != 2 || res.Files != 0 {
		t.Fatalf("batch against a server gone: %v, %d files, %v", res.Failures, res.Files, err)
	}
	if msg := lost.Error(); !strings.Contains(msg, "could not reconnect (") || strings.Contains(msg, "context deadline") {
		t.Errorf("reconnect failure reads %q", msg)
	}
}

// RemoveTree sends nothing once its context has ended (a request sent is
// carried out), and stops at the first failure to reconnect instead of
// spending the retry time on every entry left.
func TestRemoveTreeStops(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "tilo")
	for i := range 60 {
		sessiontest.WriteFile(t, filepath.Join(home, "t", fmt.Sprintf("d%d", i%3), fmt.Sprintf("f%02d", i)), []byte("x"))
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var fails []error
	if n := c.RemoveTree(ctx, "t", func(_ string, err error) { fails = append(fails, err) }); n != 0 || len(fails) != 0 {
		t.Fatalf("canceled RemoveTree: %d removed, %v", n, fails)
	}
	if ents, _ := os.ReadDir(filepath.Join(home, "t", "d0")); len(ents) != 20 {
		t.Fatalf("a canceled rm -r removed files: %d of 20 left", len(ents))
	}

	if err := ts.Stop(0); err != nil {
		t.Fatal(err)
	}
	// Until the connection's end is seen, the server may still answer
	// "shutting down".
	for range 100 {
		if _, err := c.Pwd(t.Context()); errors.As(err, new(*session.ConnLostError)) {
			break
		}
	}
	start := time.Now()
	c.RemoveTree(t.Context(), "t", func(_ string, err error) { fails = append(fails, err) })
	var lost *session.ConnLostError
	if len(fails) != 1 || !errors.As(fails[0], &lost) {
		t.Fatalf("rm -r against a server gone: %d failures (%v), want one that says it could not reconnect", len(fails), fails)
	}
	t.Logf("stopped after %v", time.Since(start))
}

package session_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/sessiontest"
	"github.com/qftp/qftp/transport"
	"github.com/qftp/qftp/transport/relay"
)

// TestSoak runs several users at once for QFTP_SOAK (say 5m; `make soak`;
// skipped without it) through a lossy, reordering link with blackouts:
// each puts, gets, renames, removes and interrupts files of every size
// at random against a model of what its home must hold, near its quota.
// At the end every user's home holds exactly the model's files, byte for
// byte, and the quota ledger matches the disk.
func TestSoak(t *testing.T) {
	d, _ := time.ParseDuration(os.Getenv("QFTP_SOAK"))
	if d <= 0 {
		t.Skip("set QFTP_SOAK=5m to run (make soak)")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	ts := sessiontest.Start(t)
	link := relay.Link{Delay: 2 * time.Millisecond, Loss: 0.005, Reorder: 0.005}
	r, err := relay.New(ts.Addr, link, link, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	// Blackouts of 1-4 s every 10-30 s: transfers ride them out or
	// reconnect and resume.
	var wg sync.WaitGroup
	wg.Go(func() {
		rng := mrand.New(mrand.NewPCG(seed, 1))
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(10+rng.IntN(20)) * time.Second):
				r.Blackout(time.Duration(1+rng.IntN(4)) * time.Second)
			}
		}
	})
	const users = 6
	ops := make([]int, users)
	for i := range users {
		name := fmt.Sprintf("soak%d", i)
		home := ts.AddUser(name, "pw")
		setQuota(t, ts, name, 48<<20)
		c := ts.DialVia(t, r.Addr(), name, "pw", session.RetryPolicy{})
		wg.Go(func() {
			ops[i] = soakUser(ctx, t, c, home, mrand.New(mrand.NewPCG(seed, uint64(i)+2)))
		})
	}
	wg.Wait()
	if err := ts.Srv.WaitIdle(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range users {
		name := fmt.Sprintf("soak%d", i)
		if l, dk := used(t, ts, name); l != dk {
			t.Errorf("%s: ledger %d, disk %d", name, l, dk)
		}
	}
	t.Logf("operations per user: %v", ops)
}

// soakUser runs random operations as one user until ctx ends, checking
// each result against a model of the home, and finally the home against
// the model. It returns the number of operations.
func soakUser(ctx context.Context, t *testing.T, c *session.Client, home string, rng *mrand.Rand) int {
	model := map[string][]byte{} // remote name -> contents
	local := t.TempDir()
	names := []string{"a", "b", "c", "d", "e", "s/a", "s/b"} // s: made and removed at random
	sizes := []int{0, 1, 4 << 10, 300 << 10, 4<<20 + 17, 17 << 20}
	data := func() []byte {
		b := make([]byte, sizes[rng.IntN(len(sizes))])
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	fail := func(format string, args ...any) {
		t.Errorf("%s: "+format, append([]any{filepath.Base(home)}, args...)...)
	}
	// expected reports whether err is one a correct server may give here.
	expected := func(err error) bool {
		return err == nil || ctx.Err() != nil || errors.Is(err, transport.ErrQuota) || errors.Is(err, context.Canceled)
	}
	// noDir reports whether err is the absence of directory s for name.
	noDir := func(name string, err error) bool {
		return strings.HasPrefix(name, "s/") && errors.Is(err, fs.ErrNotExist)
	}
	inS := func() bool {
		for name := range model {
			if strings.HasPrefix(name, "s/") {
				return true
			}
		}
		return false
	}
	// learn reads name back after an operation whose outcome the client
	// cannot know (a put interrupted right at its commit): the file must
	// be one of the versions it could be, never a mix.
	learn := func(name string, could ...[]byte) {
		dst := filepath.Join(local, "learn")
		_ = os.Remove(dst)
		_, err := c.Get(ctx, name, dst, session.TransferOptions{Force: true})
		if errors.Is(err, fs.ErrNotExist) {
			if len(could) > 1 && could[0] != nil {
				fail("%s vanished", name)
			}
			delete(model, name)
			return
		}
		if err != nil {
			if !expected(err) {
				fail("get %s to learn it: %v", name, err)
			}
			return
		}
		got, _ := os.ReadFile(dst)
		for _, b := range could {
			if b != nil && bytes.Equal(got, b) {
				model[name] = b
				return
			}
		}
		fail("%s holds %d bytes, none of the versions it could hold", name, len(got))
	}
	n := 0
	uncertain := map[string]bool{} // names the op cut off at the end touched
	for ; ctx.Err() == nil && n < 100000; n++ {
		name := names[rng.IntN(len(names))]
		to := names[rng.IntN(len(names))]
		opt := session.TransferOptions{Force: rng.IntN(2) == 0}
		if rng.IntN(3) == 0 {
			opt.Connections = session.ConnectionsAuto
		}
		switch op := rng.IntN(11); {
		case op < 4: // put, sometimes interrupted
			b := data()
			src := filepath.Join(local, "src")
			if err := os.WriteFile(src, b, 0o644); err != nil {
				t.Fatal(err)
			}
			pctx, stop := context.WithCancel(ctx)
			interrupt := rng.IntN(4) == 0
			if interrupt {
				at := int64(rng.IntN(len(b) + 1))
				opt.Progress = func(done, total int64) {
					if done >= at {
						stop()
					}
				}
			}
			_, err := c.Put(pctx, src, name, opt)
			stop()
			old, had := model[name]
			switch {
			case err == nil:
				if had && !opt.Force && !bytes.Equal(old, b) {
					fail("put %s over a different file without -f succeeded", name)
				}
				model[name] = b
			case errors.Is(err, fs.ErrExist):
				if !had || opt.Force {
					fail("put %s: %v", name, err)
				}
			case noDir(name, err):
				if had {
					fail("put %s: %v, but the model has it", name, err)
				}
			case !expected(err):
				fail("put %s: %v", name, err)
			case interrupt && ctx.Err() == nil:
				// Stopped at the end, it may have committed.
				if had {
					learn(name, old, b)
				} else {
					learn(name, nil, b)
				}
			}
		case op < 7: // get and compare
			want, ok := model[name]
			dst := filepath.Join(local, "dst")
			_, err := c.Get(ctx, name, dst, session.TransferOptions{Force: true, Connections: opt.Connections})
			switch {
			case !ok && !errors.Is(err, fs.ErrNotExist) && ctx.Err() == nil:
				fail("get of missing %s: %v", name, err)
			case ok && err == nil:
				if got, _ := os.ReadFile(dst); !bytes.Equal(got, want) {
					fail("get %s: %d bytes differ from the %d put", name, len(got), len(want))
				}
			case ok && !expected(err):
				fail("get %s: %v", name, err)
			}
		case op < 8: // mv -f
			err := c.Rename(ctx, name, to, true)
			b, ok := model[name]
			switch {
			case err == nil && ok:
				delete(model, name)
				model[to] = b
			case err == nil:
				fail("mv of missing %s succeeded", name)
			case name == to || !ok && errors.Is(err, fs.ErrNotExist) || noDir(to, err):
			case !expected(err):
				fail("mv %s %s: %v", name, to, err)
			}
		case op < 9: // rm
			err := c.Remove(ctx, name)
			_, ok := model[name]
			switch {
			case err == nil:
				delete(model, name)
			case !ok && errors.Is(err, fs.ErrNotExist):
			case !expected(err):
				fail("rm %s: %v", name, err)
			}
		case op < 10: // mkdir -p s, or rmdir s (which drops partial uploads left in it)
			if rng.IntN(2) == 0 {
				if err := c.Mkdir(ctx, "s", true); !expected(err) {
					fail("mkdir -p s: %v", err)
				}
				break
			}
			err := c.Rmdir(ctx, "s")
			switch {
			case err == nil && inS():
				fail("rmdir s succeeded with files in it")
			case errors.Is(err, syscall.ENOTEMPTY) && !inS() && !strings.Contains(err.Error(), "an upload into it"):
				fail("rmdir s of no files: %v", err)
			case err == nil, errors.Is(err, syscall.ENOTEMPTY), errors.Is(err, fs.ErrNotExist):
			case !expected(err):
				fail("rmdir s: %v", err)
			}
		default: // df within quota
			if u, err := c.Df(ctx); err == nil && u.Quota > 0 && u.Used > u.Quota {
				fail("df: %d used of %d", u.Used, u.Quota)
			} else if !expected(err) {
				fail("df: %v", err)
			}
		}
		if ctx.Err() != nil {
			// Cut off by the end: it may or may not have happened.
			uncertain[name], uncertain[to] = true, true
		}
	}
	// The home holds the model's files, and only those.
	ents, err := os.ReadDir(home)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if name := e.Name(); !strings.HasPrefix(name, ".qftp-") && !uncertain[name] && model[name] == nil && !e.IsDir() {
			if _, ok := model[name]; !ok {
				fail("%s is there, but was never put or was removed", name)
			}
		}
	}
	for name, want := range model {
		if uncertain[name] {
			continue
		}
		if got, err := os.ReadFile(filepath.Join(home, name)); err != nil || !bytes.Equal(got, want) {
			fail("%s holds %d bytes, want %d (%v)", name, len(got), len(want), err)
		}
	}
	return n
}

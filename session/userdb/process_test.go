package userdb

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// helperEnv makes the test binary act as a second process (the admin CLI)
// that adds users to the database named by the variable.
const (
	helperEnv       = "USERDB_TEST_HELPER_DB"
	helperPrefixEnv = "USERDB_TEST_HELPER_PREFIX"
	helperUsers     = 25
)

func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		if err := helperAdd(path, os.Getenv(helperPrefixEnv)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helperAdd adds and verifies helperUsers users named prefix0, prefix1, ….
func helperAdd(path, prefix string) error {
	ctx := context.Background()
	s, err := Open(path, Options{Params: cheap})
	if err != nil {
		return err
	}
	defer s.Close()
	for i := range helperUsers {
		name := fmt.Sprintf("%s%d", prefix, i)
		if err := s.Add(ctx, name, "pw-"+name, 0); err != nil {
			return err
		}
		if err := s.SetUsed(ctx, name, int64(i)); err != nil {
			return err
		}
	}
	return s.Close()
}

// TestCrossProcess runs two helper processes that add users while this
// process, with its Store opened beforehand, writes and authenticates:
// the admin CLI and the server on one file, for real.
func TestCrossProcess(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := newPath(t)
	server := openStore(t, path)

	var wg sync.WaitGroup
	prefixes := []string{"cli_a", "cli_b"}
	outs := make([][]byte, len(prefixes))
	errs := make([]error, len(prefixes))
	for i, p := range prefixes {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"="+path, helperPrefixEnv+"="+p)
			outs[i], errs[i] = cmd.CombinedOutput()
		})
	}
	var serverErr error
	wg.Go(func() {
		for i := range helperUsers {
			name := fmt.Sprintf("srv%d", i)
			if serverErr = server.Add(ctx, name, "pw-"+name, 0); serverErr != nil {
				return
			}
			if _, serverErr = server.Authenticate(ctx, name, "pw-"+name); serverErr != nil {
				return
			}
		}
	})
	wg.Wait()
	for i := range prefixes {
		if errs[i] != nil {
			t.Errorf("helper %s: %v\n%s", prefixes[i], errs[i], outs[i])
		}
	}
	if serverErr != nil {
		t.Errorf("server: %v", serverErr)
	}
	if t.Failed() {
		return
	}

	if n, err := server.Count(ctx); err != nil || n != 3*helperUsers {
		t.Errorf("Count = %d, %v; want %d", n, err, 3*helperUsers)
	}
	// Users the other processes added are visible without reopening.
	for _, p := range prefixes {
		name := fmt.Sprintf("%s%d", p, helperUsers-1)
		u, err := server.Authenticate(ctx, name, "pw-"+name)
		if err != nil || u.Used != helperUsers-1 {
			t.Errorf("Authenticate(%s) = %+v, %v", name, u, err)
		}
	}
}

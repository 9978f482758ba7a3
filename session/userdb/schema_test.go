package userdb

import (
	"strings"
	"sync"
	"testing"
)

func TestSchemaTooNew(t *testing.T) {
	t.Parallel()
	path := newPath(t)
	s, err := Open(path, Options{Params: cheap})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(t.Context(), `INSERT INTO schema_version (version, applied) VALUES (999, 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(path, Options{Params: cheap}); err == nil || !strings.Contains(err.Error(), "newer") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open of newer schema = %v, want error", err)
	}
}

// TestConcurrentOpenNewFile has several processes-to-be open a file that
// does not exist yet; the schema must be created once and nobody fails.
func TestConcurrentOpenNewFile(t *testing.T) {
	t.Parallel()
	path := newPath(t)
	const n = 4
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = Open(path, Options{Params: cheap}) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open %d: %v", i, errs[i])
			continue
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	if t.Failed() {
		return
	}
	mustAdd(t, stores[0], "alice", "pw", 0)
	for i, s := range stores {
		if _, err := s.Get(t.Context(), "alice"); err != nil {
			t.Errorf("store %d: %v", i, err)
		}
	}
}

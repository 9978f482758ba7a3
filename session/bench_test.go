package session_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/sessiontest"
)

// BenchmarkSmallFiles uploads a tree of small files over loopback with one
// file at a time and with several in parallel (each on its own stream),
// and reports files per second. Run: make bench.
func BenchmarkSmallFiles(b *testing.B) {
	const files, size = 500, 16 << 10
	for _, jobs := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("jobs=%d", jobs), func(b *testing.B) {
			ts := sessiontest.Start(b)
			ts.AddUser("bench", "pw")
			c := ts.Login(b, "bench", "pw")
			src := filepath.Join(b.TempDir(), "tree")
			for i := range files {
				sessiontest.WriteFile(b, filepath.Join(src, fmt.Sprintf("d%d", i%10), fmt.Sprintf("f%04d", i)), make([]byte, size))
			}
			b.SetBytes(files * size)
			b.ResetTimer()
			for i := range b.N {
				p, err := c.PlanPutTree(b.Context(), src, fmt.Sprintf("/run%d", i), session.TreeOptions{})
				if err != nil {
					b.Fatal(err)
				}
				res, err := c.RunPlan(b.Context(), p, session.BatchOptions{Jobs: jobs})
				if err != nil || len(res.Failures) > 0 {
					b.Fatalf("%v %v", err, res.Failures)
				}
			}
			b.ReportMetric(float64(files*b.N)/b.Elapsed().Seconds(), "files/s")
			b.StopTimer()
			_ = os.RemoveAll(src)
		})
	}
}

package main

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// Every client, server and transfer goroutine must be gone when the tests
// end: each has an owner that stops it.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

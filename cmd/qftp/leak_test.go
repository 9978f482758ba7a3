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
	// The qftp binaries the tests run keep their state here, not in the
	// home directory of whoever runs the tests.
	state, err := os.MkdirTemp("", "qftp-state")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_STATE_HOME", state)
	code := m.Run()
	_ = os.RemoveAll(state)
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

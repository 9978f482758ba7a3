package main

import (
	"testing"

	"go.uber.org/goleak"
)

// Every client, server and transfer goroutine must be gone when the tests
// end: each has an owner that stops it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

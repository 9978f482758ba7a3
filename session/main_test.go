package session_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every server, session and transfer goroutine must be gone when the tests
// end: each has an owner that stops it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

package transport

import (
	"errors"
	"fmt"
	"testing"

	"github.com/quic-go/quic-go"
)

// Explain words QUIC's errors for people, keeps them reachable with
// errors.As, and leaves our own stream resets alone.
func TestExplain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{&quic.IdleTimeoutError{}, "connection timed out: nothing heard from the other end"},
		{fmt.Errorf("dial: %w", &quic.HandshakeTimeoutError{}), "no answer from the server"},
		{&quic.StreamError{ErrorCode: StreamCanceled, Remote: true}, streamCodeText[StreamCanceled]},
		{&quic.ApplicationError{ErrorCode: ConnShutdown, Remote: true, ErrorMessage: "server is shutting down"}, "server is shutting down"},
	}
	for _, tt := range tests {
		got := Explain(tt.err)
		if got.Error() != tt.want || !errors.Is(got, tt.err) && !errors.As(got, new(*quic.HandshakeTimeoutError)) {
			t.Errorf("Explain(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
	local := &quic.StreamError{ErrorCode: StreamCanceled, Remote: false}
	if got := Explain(local); got != error(local) {
		t.Errorf("Explain of our own reset = %q, want it unchanged", got)
	}
}

package transport

import (
	"errors"
	"strings"

	"github.com/quic-go/quic-go"
)

// Connection error codes (QUIC CONNECTION_CLOSE, application space).
const (
	ConnNoError      quic.ApplicationErrorCode = 0x0
	ConnProtocol     quic.ApplicationErrorCode = 0x1 // malformed or unexpected message
	ConnAuthFailed   quic.ApplicationErrorCode = 0x2 // login refused
	ConnShutdown     quic.ApplicationErrorCode = 0x3 // server shutting down
	ConnLoginTimeout quic.ApplicationErrorCode = 0x4 // no login in time
	ConnInternal     quic.ApplicationErrorCode = 0x5
	ConnStalled      quic.ApplicationErrorCode = 0x6 // client: nothing arrived for too long, taken for dead
	ConnBusy         quic.ApplicationErrorCode = 0x7 // too many connections awaiting login; try again shortly
)

// Stream error codes (RESET_STREAM / STOP_SENDING).
const (
	StreamCanceled         quic.StreamErrorCode = 0x10 // the peer gave up (e.g. user pressed Ctrl-C)
	StreamNotAuthenticated quic.StreamErrorCode = 0x11 // stream opened before login
	StreamRefused          quic.StreamErrorCode = 0x12 // request failed; a TransferReply with the reason follows
	StreamProtocol         quic.StreamErrorCode = 0x13 // malformed header, trailer or byte count
	StreamShutdown         quic.StreamErrorCode = 0x14 // server shutting down
	StreamIO               quic.StreamErrorCode = 0x15 // local I/O error while sending
	StreamSourceChanged    quic.StreamErrorCode = 0x16 // the file changed size while being sent
)

var streamCodeText = map[quic.StreamErrorCode]string{
	StreamCanceled:         "transfer canceled by peer",
	StreamNotAuthenticated: "not logged in",
	StreamRefused:          "refused by server",
	StreamProtocol:         "protocol error",
	StreamShutdown:         "server is shutting down",
	StreamIO:               "I/O error on the sending side",
	StreamSourceChanged:    "file changed while being sent",
}

var connCodeText = map[quic.ApplicationErrorCode]string{
	ConnNoError:      "connection closed",
	ConnProtocol:     "protocol error",
	ConnAuthFailed:   "authentication failed",
	ConnShutdown:     "server is shutting down",
	ConnLoginTimeout: "login timed out",
	ConnInternal:     "internal server error",
	ConnStalled:      "connection stalled",
	ConnBusy:         "server busy",
}

// MsgLoginThrottled ends the message of a login refused because of
// earlier failures from the same address (not because of this password):
// a client may try again later with the same password.
const MsgLoginThrottled = "too many failed logins; try again later"

// LoginThrottled reports whether err is a login refused for earlier
// failures from the address (see MsgLoginThrottled), not for its password.
func LoginThrottled(err error) bool {
	return errors.Is(err, ErrAuth) && strings.Contains(err.Error(), MsgLoginThrottled)
}

// Explain turns QUIC stream and connection errors carrying qftp codes into
// readable errors; other errors are returned unchanged.
func Explain(err error) error {
	if err == nil {
		return nil
	}
	var se *quic.StreamError
	// Only the peer's codes: a stream we reset ourselves is not "canceled
	// by peer" (callers report their own reasons for that).
	if errors.As(err, &se) && se.Remote {
		if txt, ok := streamCodeText[se.ErrorCode]; ok {
			return &ExplainedError{Text: txt, Err: err}
		}
	}
	if errors.As(err, new(*quic.HandshakeTimeoutError)) {
		return &ExplainedError{Text: "no answer from the server", Err: err}
	}
	if errors.As(err, new(*quic.IdleTimeoutError)) {
		// Before the handshake completes, quic-go reports its handshake
		// idle timeout as an idle timeout too.
		return &ExplainedError{Text: "connection timed out: nothing heard from the other end", Err: err}
	}
	var sr *quic.StatelessResetError
	if errors.As(err, &sr) {
		return &ExplainedError{Text: "connection lost: the server no longer knows it (it restarted, or ended it while the network was down)", Err: err}
	}
	var ae *quic.ApplicationError
	if errors.As(err, &ae) && ae.Remote {
		txt, ok := connCodeText[ae.ErrorCode]
		if !ok {
			return err
		}
		if ae.ErrorMessage != "" && ae.ErrorMessage != txt {
			txt += ": " + ae.ErrorMessage
		}
		switch ae.ErrorCode {
		case ConnAuthFailed:
			// Branchable like a refused login: errors.Is(err, ErrAuth).
			return &Error{Code: CodeAuth, Msg: txt}
		case ConnBusy:
			return &Error{Code: CodeBusy, Msg: txt}
		}
		return &ExplainedError{Text: txt, Err: err}
	}
	return err
}

// ExplainedError is a QUIC error with its qftp meaning in words. Error
// returns only the words; Unwrap gives the QUIC error.
type ExplainedError struct {
	Text string
	Err  error
}

func (e *ExplainedError) Error() string { return e.Text }
func (e *ExplainedError) Unwrap() error { return e.Err }

package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"
)

// MaxFrameSize is the largest CBOR message a frame may carry. Every control
// message and transfer header fits well inside it; the bound is what keeps a
// hostile peer from making the other side allocate without limit.
const MaxFrameSize = 64 << 10

// ErrFrameTooLarge is returned by ReadFrame for a frame whose declared length
// exceeds MaxFrameSize, and by WriteFrame for a message that would.
var ErrFrameTooLarge = errors.New("frame too large")

// encMode and decMode are the only CBOR codecs used on the wire. decMode is
// strict: bounded nesting and container sizes, duplicate map keys and
// indefinite lengths rejected, tags forbidden. Unknown fields are ignored so
// that newer peers can add optional fields.
var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.EncOptions{
		Sort:          cbor.SortCoreDeterministic,
		IndefLength:   cbor.IndefLengthForbidden,
		TagsMd:        cbor.TagsForbidden,
		ShortestFloat: cbor.ShortestFloat16,
	}.EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		MaxNestedLevels:  8,
		MaxArrayElements: 4096,
		MaxMapPairs:      64,
		UTF8:             cbor.UTF8RejectInvalid,
		// Field names match exactly: "OP" is not "op".
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// WriteFrame encodes v as CBOR and writes it preceded by its length as a
// 4-byte big-endian integer, in one Write call.
func WriteFrame(w io.Writer, v any) error {
	body, err := encMode.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode frame: %w", err)
	}
	if len(body) > MaxFrameSize {
		return fmt.Errorf("encode frame: %d bytes: %w", len(body), ErrFrameTooLarge)
	}
	buf := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	_, err = w.Write(buf)
	return err
}

// ReadFrame reads one frame from r and decodes it into v. It never allocates
// more than MaxFrameSize for the body. io.EOF means r ended cleanly before a
// frame started; a frame cut short yields io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrameSize {
		return fmt.Errorf("read frame: %d bytes: %w", n, ErrFrameTooLarge)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return Unmarshal(body, v)
}

// Unmarshal decodes one CBOR message with the strict wire decoder.
func Unmarshal(body []byte, v any) error {
	if err := decMode.Unmarshal(body, v); err != nil {
		return &ProtocolError{Msg: "decode message: " + err.Error()}
	}
	return nil
}

// Marshal encodes v with the wire encoder.
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// ProtocolError reports a message that is well framed but not a valid
// message of the protocol.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "protocol error: " + e.Msg }

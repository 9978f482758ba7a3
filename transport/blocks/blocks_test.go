package blocks

import (
	"bytes"
	"crypto/rand"
	"errors"
	"slices"
	"testing"

	"github.com/zeebo/blake3"
)

func TestSendReceive(t *testing.T) {
	t.Parallel()
	const bs = 1024
	for _, n := range []int64{0, 1, bs - 1, bs, bs + 1, 5*bs + 7} {
		data := make([]byte, n)
		_, _ = rand.Read(data)
		var wire bytes.Buffer
		ds, err := Send(&wire, bytes.NewReader(data), 0, n, bs, SendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if int64(wire.Len()) != WireLength(n, bs) || int64(len(ds)) != Count(n, bs) {
			t.Fatalf("n=%d: wire %d bytes, %d digests", n, wire.Len(), len(ds))
		}
		var got []byte
		var gotDs []Digest
		err = Receive(&wire, 0, n, bs, func(b Block) error {
			if !b.OK {
				t.Fatalf("block %d bad", b.Index)
			}
			got = append(got, b.Data...)
			gotDs = append(gotDs, b.Digest)
			return nil
		})
		if err != nil || !bytes.Equal(got, data) || !slices.Equal(ds, gotDs) {
			t.Fatalf("n=%d: err %v, equal %v", n, err, bytes.Equal(got, data))
		}
	}
}

func TestReceiveFindsCorruption(t *testing.T) {
	t.Parallel()
	const bs = 1000
	data := make([]byte, 4500)
	_, _ = rand.Read(data)
	var wire bytes.Buffer
	// Flip a byte in blocks 1 and 3 after hashing, as a bad link would.
	tamper := func(off int64, b []byte) {
		if off == 1000 || off == 3000 {
			b[17] ^= 1
		}
	}
	if _, err := Send(&wire, bytes.NewReader(data), 0, int64(len(data)), bs, SendOptions{Tamper: tamper}); err != nil {
		t.Fatal(err)
	}
	var good []int64
	err := Receive(&wire, 0, int64(len(data)), bs, func(b Block) error {
		if b.OK {
			good = append(good, b.Index)
		}
		return nil
	})
	var me *MismatchError
	if !errors.As(err, &me) || !errors.Is(err, ErrMismatch) || me.Offset != 1000 || !slices.Equal(me.Blocks, []int64{1, 3}) {
		t.Fatalf("err = %v", err)
	}
	if !slices.Equal(good, []int64{0, 2, 4}) {
		t.Fatalf("good blocks %v", good)
	}
}

func TestOffsetRange(t *testing.T) {
	t.Parallel()
	const bs = 100
	data := make([]byte, 1000)
	_, _ = rand.Read(data)
	var wire bytes.Buffer
	if _, err := Send(&wire, bytes.NewReader(data[300:750]), 300, 450, bs, SendOptions{}); err != nil {
		t.Fatal(err)
	}
	var idx []int64
	if err := Receive(&wire, 300, 450, bs, func(b Block) error {
		idx = append(idx, b.Index)
		if !bytes.Equal(b.Data, data[b.Offset:b.Offset+int64(len(b.Data))]) {
			t.Fatalf("block %d data differs", b.Index)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(idx, []int64{3, 4, 5, 6, 7}) {
		t.Fatalf("indices %v", idx)
	}
	if _, err := Send(&wire, bytes.NewReader(data), 150, 10, bs, SendOptions{}); err == nil {
		t.Fatal("unaligned offset accepted")
	}
}

func TestFileDigest(t *testing.T) {
	t.Parallel()
	// Known answer: BLAKE3 of 8 zero bytes (size 0, no blocks).
	want := blake3.Sum256(make([]byte, 8))
	if got := FileDigest(0, nil); got != Digest(want) {
		t.Fatalf("empty file digest %v", got)
	}
	a, b := Sum([]byte("a")), Sum([]byte("b"))
	if FileDigest(2, []Digest{a, b}) == FileDigest(2, []Digest{b, a}) {
		t.Fatal("order does not matter")
	}
	if FileDigest(2, []Digest{a, b}) == FileDigest(3, []Digest{a, b}) {
		t.Fatal("size does not matter")
	}
}

func BenchmarkSum(b *testing.B) {
	buf := make([]byte, Size)
	b.SetBytes(Size)
	for b.Loop() {
		Sum(buf)
	}
}

// Sum is standard BLAKE3-256 (the official test vectors), so digests stay
// comparable with b3sum whichever implementation computes them.
func TestSumKnownAnswers(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":    "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
		"abc": "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
	} {
		if got := Sum([]byte(in)).String(); got != want {
			t.Errorf("Sum(%q) = %s, want %s", in, got, want)
		}
	}
}

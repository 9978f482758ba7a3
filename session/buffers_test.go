package session

import (
	"errors"
	"strings"
	"testing"

	"github.com/qftp/qftp/transport"
	"github.com/qftp/qftp/transport/blocks"
)

func TestHoldBuffers(t *testing.T) {
	t.Parallel()
	const bs = 256 << 10
	one := blocks.Memory(8*bs, bs)
	s := &Server{MaxUserBuffers: 2 * one}
	var releases []func()
	for range 2 {
		r, err := s.holdBuffers("ann", 8*bs, bs)
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, r)
	}
	var we *transport.Error
	if _, err := s.holdBuffers("ann", 8*bs, bs); !errors.As(err, &we) || we.Code != transport.CodeBusy {
		t.Fatalf("third transfer: %v, want busy", err)
	}
	// Another user has a budget of its own.
	r, err := s.holdBuffers("bob", 8*bs, bs)
	if err != nil {
		t.Fatalf("bob: %v", err)
	}
	r()
	// The budget is full: even a small file is refused.
	if _, err := s.holdBuffers("ann", 100, bs); !errors.As(err, &we) {
		t.Fatalf("even a small file fits no more: %v", err)
	}
	releases[0]()
	if r, err := s.holdBuffers("ann", 8*bs, bs); err != nil {
		t.Fatalf("after a release: %v", err)
	} else {
		r()
	}
	releases[1]()
	// A range that can never fit is invalid, not busy.
	if _, err := s.holdBuffers("ann", 64<<20, 16<<20); !errors.As(err, &we) || we.Code != transport.CodeInvalid {
		t.Fatalf("oversized: %v, want invalid", err)
	}
}

// All users together stay within MaxTotalBuffers: a user under their own
// budget is refused as busy when the others hold the rest.
func TestHoldBuffersTotal(t *testing.T) {
	t.Parallel()
	const bs = 256 << 10
	one := blocks.Memory(8*bs, bs)
	s := &Server{MaxUserBuffers: 2 * one, MaxTotalBuffers: 3 * one}
	var releases []func()
	for _, user := range []string{"ann", "ann", "bob"} {
		r, err := s.holdBuffers(user, 8*bs, bs)
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		releases = append(releases, r)
	}
	var we *transport.Error
	if _, err := s.holdBuffers("bob", 8*bs, bs); !errors.As(err, &we) || we.Code != transport.CodeBusy || !strings.Contains(we.Msg, "other users") {
		t.Fatalf("bob over the total: %v, want busy", err)
	}
	releases[0]() // ann's first ends: bob fits
	r, err := s.holdBuffers("bob", 8*bs, bs)
	if err != nil {
		t.Fatalf("bob after a release: %v", err)
	}
	r()
	// A refusal for the total gave bob's own budget back.
	r, err = s.holdBuffers("bob", 8*bs, bs)
	if err != nil {
		t.Fatalf("bob's budget leaked: %v", err)
	}
	r()
}

package session

import (
	"cmp"
	"fmt"
	"sync"

	"golang.org/x/sync/semaphore"

	"github.com/qftp/qftp/transport"
	"github.com/qftp/qftp/transport/blocks"
)

// defaultMaxUserBuffers is MaxUserBuffers' default: room for 128
// connections × 2 streams of a striped transfer in 1 MiB blocks (512 MiB
// and the digests' bytes), per user, with some to spare.
const defaultMaxUserBuffers = 544 << 20

// defaultMaxTotal is MaxTotalBuffers' and MaxTotalWindow's default: a
// few users at their full budgets.
const defaultMaxTotal = 2 << 30

// holdBuffers reserves, among user's running transfers, the buffers of a
// range of n bytes in blocks of bs, and returns the function that gives
// them back (it may be called more than once); when they do not fit it fails with busy (the client retries
// later). Without it a client could make the server allocate blocks on
// every stream of every connection it opens, whether or not it then reads
// or sends anything. (Waiting instead of refusing could deadlock: the
// data of a waiting put fills its connection's flow-control window, which
// the running transfers of that connection need.)
func (s *Server) holdBuffers(user string, n, bs int64) (func(), error) {
	need := blocks.Memory(n, bs)
	limit := s.MaxUserBuffers
	if limit <= 0 {
		limit = defaultMaxUserBuffers
	}
	if need > limit {
		return nil, &transport.Error{Code: transport.CodeInvalid, Msg: fmt.Sprintf("a transfer in blocks of %d bytes needs %d bytes of buffers, more than the %d a user may hold", bs, need, limit)}
	}
	s.mu.Lock()
	if s.buffers == nil {
		s.buffers = make(map[string]*semaphore.Weighted)
	}
	sem := s.buffers[user]
	if sem == nil {
		sem = semaphore.NewWeighted(limit)
		s.buffers[user] = sem
	}
	if s.allBufs == nil {
		s.allBufs = semaphore.NewWeighted(max(cmp.Or(s.MaxTotalBuffers, defaultMaxTotal), limit))
	}
	all := s.allBufs
	s.mu.Unlock()
	if !sem.TryAcquire(need) {
		return nil, &transport.Error{Code: transport.CodeBusy, Msg: "too many transfers running for this user; try again"}
	}
	if !all.TryAcquire(need) {
		sem.Release(need)
		return nil, &transport.Error{Code: transport.CodeBusy, Msg: "the server is busy with other users' transfers; try again"}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			all.Release(need)
			sem.Release(need)
		})
	}, nil
}

// Package relay is a user-space UDP relay between a client and a server
// on loopback that delays, drops, reorders and blacks out datagrams, so
// that tests and benchmarks can run over a bad link without root or netem.
// It is deterministic for a given seed (up to timing).
package relay

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Link describes one direction of the emulated link.
type Link struct {
	Delay   time.Duration // one-way delay
	Loss    float64       // probability that a datagram is dropped
	Reorder float64       // probability that a datagram is delayed by an extra Delay/2
	// Rate caps the direction in bytes per second (0: unlimited); excess
	// datagrams queue up to QueueBytes and are dropped beyond it.
	Rate       int64
	QueueBytes int64 // 0 means 1 MiB
}

// Relay forwards datagrams between clients and one server address.
type Relay struct {
	conn   *net.UDPConn // clients talk to this
	server *net.UDPAddr
	up     Link // client -> server
	down   Link // server -> client

	mu       sync.Mutex
	rng      *rand.Rand
	peers    map[string]*peer
	blackout time.Time // drop everything until then
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stats    Stats
}

// Stats counts datagrams.
type Stats struct {
	Forwarded, Dropped int64
}

type peer struct {
	client   *net.UDPAddr
	upstream *net.UDPConn // to the server, one socket per client
	upQ      *queue
	downQ    *queue
}

// New starts a relay on 127.0.0.1 in front of server. Close stops it.
func New(server string, up, down Link, seed uint64) (*Relay, error) {
	sa, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		return nil, err
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{conn: c, server: sa, up: up, down: down, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		peers: map[string]*peer{}, ctx: ctx, cancel: cancel}
	r.wg.Go(r.readClients)
	return r, nil
}

// Addr is the address clients dial instead of the server's.
func (r *Relay) Addr() string { return r.conn.LocalAddr().String() }

// Blackout drops every datagram in both directions for d from now.
func (r *Relay) Blackout(d time.Duration) {
	r.mu.Lock()
	r.blackout = time.Now().Add(d)
	r.mu.Unlock()
}

// Stats returns the counters so far.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Close stops the relay and waits for its goroutines.
func (r *Relay) Close() error {
	r.cancel()
	err := r.conn.Close()
	r.mu.Lock()
	for _, p := range r.peers {
		_ = p.upstream.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return err
}

// decide returns when a datagram of n bytes going through l should be
// delivered, or false to drop it.
func (r *Relay) decide(l Link, q *queue, n int) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if now.Before(r.blackout) || r.rng.Float64() < l.Loss {
		r.stats.Dropped++
		return time.Time{}, false
	}
	at := now
	if l.Rate > 0 {
		// A token bucket drained at Rate: the datagram leaves when the
		// queue ahead of it has.
		qb := l.QueueBytes
		if qb == 0 {
			qb = 1 << 20
		}
		if q.busyUntil.Before(now) {
			q.busyUntil = now
		}
		backlog := int64(q.busyUntil.Sub(now).Seconds() * float64(l.Rate))
		if backlog+int64(n) > qb {
			r.stats.Dropped++
			return time.Time{}, false
		}
		q.busyUntil = q.busyUntil.Add(time.Duration(float64(n) / float64(l.Rate) * float64(time.Second)))
		at = q.busyUntil
	}
	at = at.Add(l.Delay)
	if l.Reorder > 0 && r.rng.Float64() < l.Reorder {
		at = at.Add(l.Delay/2 + time.Millisecond)
	}
	r.stats.Forwarded++
	return at, true
}

func (r *Relay) readClients() {
	buf := make([]byte, 65536)
	for {
		n, from, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		p, err := r.peerFor(from)
		if err != nil {
			continue
		}
		if at, ok := r.decide(r.up, p.upQ, n); ok {
			p.upQ.push(at, buf[:n])
		}
	}
}

func (r *Relay) peerFor(from *net.UDPAddr) (*peer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.peers[from.String()]; ok {
		return p, nil
	}
	if r.ctx.Err() != nil {
		return nil, errors.New("relay closed")
	}
	up, err := net.DialUDP("udp", nil, r.server)
	if err != nil {
		return nil, err
	}
	p := &peer{client: from, upstream: up}
	p.upQ = newQueue(func(b []byte) { _, _ = up.Write(b) })
	p.downQ = newQueue(func(b []byte) { _, _ = r.conn.WriteToUDP(b, from) })
	r.peers[from.String()] = p
	r.wg.Go(func() { p.upQ.run(r.ctx) })
	r.wg.Go(func() { p.downQ.run(r.ctx) })
	r.wg.Go(func() {
		buf := make([]byte, 65536)
		for {
			n, err := up.Read(buf)
			if err != nil {
				return
			}
			if at, ok := r.decide(r.down, p.downQ, n); ok {
				p.downQ.push(at, buf[:n])
			}
		}
	})
	return p, nil
}

// queue delivers datagrams at their times, in time order.
type queue struct {
	mu        sync.Mutex
	items     []item
	wake      chan struct{}
	send      func([]byte)
	busyUntil time.Time // rate limiting, guarded by Relay.mu
}

type item struct {
	at   time.Time
	data []byte
}

func newQueue(send func([]byte)) *queue {
	return &queue{wake: make(chan struct{}, 1), send: send}
}

func (q *queue) push(at time.Time, b []byte) {
	it := item{at: at, data: append([]byte(nil), b...)}
	q.mu.Lock()
	// Insert in time order; nearly always at the end.
	i := len(q.items)
	for i > 0 && q.items[i-1].at.After(at) {
		i--
	}
	q.items = append(q.items, item{})
	copy(q.items[i+1:], q.items[i:])
	q.items[i] = it
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue) run(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		q.mu.Lock()
		var next time.Time
		var due []item
		now := time.Now()
		for len(q.items) > 0 && !q.items[0].at.After(now) {
			due = append(due, q.items[0])
			q.items = q.items[1:]
		}
		if len(q.items) > 0 {
			next = q.items[0].at
		}
		q.mu.Unlock()
		for _, it := range due {
			q.send(it.data)
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = time.Until(next)
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		case <-t.C:
		}
	}
}

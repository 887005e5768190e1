package tunnel

import (
	"math/bits"
	"sync"

	"google.golang.org/grpc/mem"
)

// BufferPool is the gRPC buffer pool of both ends of a plugin connection.
//
// gRPC's default pool has tiers of 256 B, 4, 16 and 32 KiB and 1 MiB, and
// zeroes the whole buffer on every reuse: a 100 KiB batch took a 1 MiB
// buffer and cleared it, which was a fifth of an SSE entrypoint's CPU. Here
// every power of two up to 4 MiB is a tier, and buffers are not zeroed: gRPC
// fills the length it asked for before anyone reads it, and the pool never
// leaves the process.
var BufferPool mem.BufferPool = newTieredPool()

const (
	minTierShift = 8  // 256 B
	maxTierShift = 22 // 4 MiB
)

type tieredPool struct {
	tiers [maxTierShift - minTierShift + 1]sync.Pool
}

func newTieredPool() *tieredPool { return &tieredPool{} }

// tier returns the index of the smallest tier holding n bytes, or -1.
func tier(n int) int {
	if n <= 1<<minTierShift {
		return 0
	}
	shift := bits.Len(uint(n - 1))
	if shift > maxTierShift {
		return -1
	}
	return shift - minTierShift
}

// Get returns a buffer of length n; its content is not zeroed.
func (p *tieredPool) Get(n int) *[]byte {
	t := tier(n)
	if t < 0 {
		b := make([]byte, n)
		return &b
	}
	if v, ok := p.tiers[t].Get().(*[]byte); ok {
		*v = (*v)[:n]
		return v
	}
	b := make([]byte, n, 1<<(t+minTierShift))
	return &b
}

// Put returns a buffer to the tier its capacity fills exactly; others are
// left to the garbage collector.
func (p *tieredPool) Put(b *[]byte) {
	c := cap(*b)
	t := tier(c)
	if t < 0 || c != 1<<(t+minTierShift) {
		return
	}
	p.tiers[t].Put(b)
}

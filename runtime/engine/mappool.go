package engine

import "sync"

// mappingPool recycles guest memory reservations. A fresh mapping costs a
// page fault (and the kernel zeroing a page) for every page the guest
// touches; a Go guest touches megabytes just to copy in its data segments.
// A recycled mapping is already faulted in, and clearing the part the last
// guest used is a fast memclr. Clearing happens when a mapping is taken, so
// it runs where instances are created (the pool refill, off the hot path),
// not where they are closed.
type mappingPool struct {
	mu   sync.Mutex
	max  int // mappings kept per size
	free map[uint64][]pooledMapping
}

type pooledMapping struct {
	buf   []byte // full capacity
	dirty uint64 // bytes the last user may have written
}

func newMappingPool(max int) *mappingPool {
	return &mappingPool{max: max, free: map[uint64][]pooledMapping{}}
}

// get returns a zeroed mapping of size bytes, recycled or new.
func (p *mappingPool) get(size uint64) ([]byte, bool) {
	p.mu.Lock()
	list := p.free[size]
	if n := len(list); n > 0 {
		pm := list[n-1]
		p.free[size] = list[:n-1]
		p.mu.Unlock()
		clear(pm.buf[:pm.dirty])
		return pm.buf, true
	}
	p.mu.Unlock()
	return reserve(size)
}

// put keeps b for reuse, or unmaps it when enough are kept.
func (p *mappingPool) put(b []byte, dirty uint64) {
	b = b[:cap(b)]
	size := uint64(len(b))
	p.mu.Lock()
	if len(p.free[size]) < p.max {
		p.free[size] = append(p.free[size], pooledMapping{buf: b, dirty: min(dirty, size)})
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	release(b)
}

// drain unmaps every pooled mapping.
func (p *mappingPool) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for size, list := range p.free {
		for _, pm := range list {
			release(pm.buf)
		}
		delete(p.free, size)
	}
}

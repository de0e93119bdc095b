package wasmrt

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// pool keeps instances ready so invocations do not pay instantiation (and a
// Go guest's _initialize, milliseconds) on the hot path. One background
// goroutine refills it whenever an instance is taken.
type pool struct {
	m      *Module
	ready  chan *instance
	refill chan struct{}
	done   chan struct{}
	wg     sync.WaitGroup
}

func newPool(m *Module, size int) *pool {
	if size == 0 {
		size = runtime.GOMAXPROCS(0)
	}
	p := &pool{m: m, done: make(chan struct{})}
	if size < 0 {
		return p
	}
	p.ready = make(chan *instance, size)
	p.refill = make(chan struct{}, 1)
	p.wg.Add(1)
	go p.loop()
	p.kick()
	return p
}

func (p *pool) kick() {
	select {
	case p.refill <- struct{}{}:
	default:
	}
}

func (p *pool) loop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.done:
			return
		case <-p.refill:
		}
		for len(p.ready) < cap(p.ready) {
			inst, err := p.m.newInstance(context.Background())
			if err != nil {
				// The caller that needs an instance will instantiate
				// inline and see the error itself; retrying here in a
				// loop would only burn CPU.
				p.m.log.Warn("pre-instantiate failed", "err", err)
				break
			}
			select {
			case p.ready <- inst:
			case <-p.done:
				_ = inst.Close(context.Background())
				return
			}
		}
	}
}

// release refills the pool once an invocation has finished. Refilling only
// then, not when the instance is taken, keeps instantiation (megabytes of
// copying and page faults for a Go guest) from running beside the
// invocation it would slow down. With reuse, instances come back through
// put, so the pool only refills while empty at the start.
func (p *pool) release() {
	if p.ready != nil && !p.m.reuse {
		p.kick()
	}
}

// get returns a ready instance, or instantiates one inline when none is. The
// second result is the time the caller spent instantiating.
func (p *pool) get(ctx context.Context) (*instance, time.Duration, error) {
	if p.ready != nil {
		select {
		case inst := <-p.ready:
			return inst, 0, nil
		default:
		}
	}
	start := time.Now()
	inst, err := p.m.newInstance(ctx)
	return inst, time.Since(start), err
}

// put offers a reused instance back. A warm instance is worth more than a
// never-used one, so when the pool is full an unused instance makes room.
func (p *pool) put(inst *instance) {
	if p.ready != nil {
		for range 2 {
			select {
			case <-p.done:
			case p.ready <- inst:
				return
			default:
				select {
				case old := <-p.ready:
					_ = old.Close(context.Background())
				default:
				}
				continue
			}
			break
		}
	}
	_ = inst.Close(context.Background())
}

func (p *pool) close() {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	p.wg.Wait()
}

func (p *pool) drain() {
	if p.ready == nil {
		return
	}
	for {
		select {
		case inst := <-p.ready:
			_ = inst.Close(context.Background())
		default:
			return
		}
	}
}

// warm instantiates until n instances (at most the pool's size) are ready,
// inline, and returns how many are ready.
func (p *pool) warm(ctx context.Context, n int) (int, error) {
	if p.ready == nil {
		return 0, nil
	}
	n = min(n, cap(p.ready))
	for len(p.ready) < n {
		if err := ctx.Err(); err != nil {
			return len(p.ready), err
		}
		inst, err := p.m.newInstance(ctx)
		if err != nil {
			return len(p.ready), err
		}
		select {
		case p.ready <- inst:
		case <-p.done:
			_ = inst.Close(context.Background())
			return 0, ErrClosed
		default: // filled meanwhile by the refill loop
			_ = inst.Close(context.Background())
			return len(p.ready), nil
		}
	}
	return len(p.ready), nil
}

package state

import (
	"context"
	"sync"
	"time"
)

// Memory is an in-memory Store. Its contents die with the process.
type Memory struct {
	mu     sync.RWMutex
	data   map[string]map[string]*memEntry
	done   map[string]map[string]memDone
	closed bool
	now    func() time.Time
	// doneWrites counts recorded idempotency keys; every 1024th sweeps
	// the expired ones, so the records stay bounded by the live ones.
	doneWrites int
}

type memEntry struct {
	value   []byte
	found   bool
	version uint64
}

type memDone struct {
	output  []byte
	expires time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{data: map[string]map[string]*memEntry{}, done: map[string]map[string]memDone{}, now: time.Now}
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, ns, key string) ([]byte, bool, error) {
	e, err := m.Read(ctx, ns, key)
	return e.Value, e.Found, err
}

// Read implements Store.
func (m *Memory) Read(_ context.Context, ns, key string) (Entry, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return Entry{}, ErrClosed
	}
	e := m.data[ns][key]
	if e == nil {
		return Entry{}, nil
	}
	out := Entry{Found: e.found, Version: e.version}
	if e.found {
		out.Value = append([]byte{}, e.value...)
	}
	return out, nil
}

// Set implements Store.
func (m *Memory) Set(ctx context.Context, ns, key string, value []byte) error {
	return m.Commit(ctx, ns, &Commit{Writes: map[string]Write{key: {Value: value}}})
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, ns, key string) error {
	return m.Commit(ctx, ns, &Commit{Writes: map[string]Write{key: {Delete: true}}})
}

// Commit implements Store.
func (m *Memory) Commit(_ context.Context, ns string, c *Commit) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	now := m.now()
	if c.Done != "" {
		if d, ok := m.done[ns][c.Done]; ok && now.Before(d.expires) {
			return ErrDuplicate
		}
	}
	for k, v := range c.Reads {
		var cur uint64
		if e := m.data[ns][k]; e != nil {
			cur = e.version
		}
		if cur != v {
			return ErrConflict
		}
	}
	b := m.data[ns]
	if b == nil && len(c.Writes) > 0 {
		b = map[string]*memEntry{}
		m.data[ns] = b
	}
	for k, w := range c.Writes {
		e := b[k]
		if e == nil {
			e = &memEntry{}
			b[k] = e
		}
		e.version++
		e.found = !w.Delete
		e.value = nil
		if !w.Delete {
			e.value = append([]byte{}, w.Value...)
		}
	}
	if c.Done != "" {
		ttl := c.TTL
		if ttl <= 0 {
			ttl = DefaultDoneTTL
		}
		d := m.done[ns]
		if d == nil {
			d = map[string]memDone{}
			m.done[ns] = d
		}
		if m.doneWrites++; m.doneWrites%1024 == 0 {
			m.expire(now)
		}
		d[c.Done] = memDone{output: append([]byte{}, c.Output...), expires: now.Add(ttl)}
	}
	return nil
}

func (m *Memory) expire(now time.Time) {
	for _, d := range m.done {
		for id, r := range d {
			if !now.Before(r.expires) {
				delete(d, id)
			}
		}
	}
}

// Done implements Store.
func (m *Memory) Done(_ context.Context, ns, id string) ([]byte, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, false, ErrClosed
	}
	d, ok := m.done[ns][id]
	if !ok || !m.now().Before(d.expires) {
		return nil, false, nil
	}
	return append([]byte{}, d.output...), true, nil
}

// Close implements Store.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

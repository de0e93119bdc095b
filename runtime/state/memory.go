package state

import (
	"context"
	"sync"
)

// Memory is an in-memory Store. Its contents die with the process.
type Memory struct {
	mu     sync.RWMutex
	data   map[string]map[string][]byte
	closed bool
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{data: map[string]map[string][]byte{}} }

// Get implements Store.
func (m *Memory) Get(_ context.Context, ns, key string) ([]byte, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, false, ErrClosed
	}
	v, ok := m.data[ns][key]
	if !ok {
		return nil, false, nil
	}
	return append([]byte(nil), v...), true, nil
}

// Set implements Store.
func (m *Memory) Set(_ context.Context, ns, key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	b := m.data[ns]
	if b == nil {
		b = map[string][]byte{}
		m.data[ns] = b
	}
	b[key] = append([]byte(nil), value...)
	return nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, ns, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	delete(m.data[ns], key)
	return nil
}

// Close implements Store.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

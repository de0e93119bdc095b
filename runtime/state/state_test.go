package state

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func stores(t *testing.T) map[string]func() Store {
	return map[string]func() Store{
		"memory": func() Store { return NewMemory() },
		"bolt": func() Store {
			s, err := OpenBolt(filepath.Join(t.TempDir(), "sub", "state.db"))
			require.NoError(t, err)
			return s
		},
	}
}

func TestStore_Contract(t *testing.T) {
	ctx := context.Background()
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			s := open()
			_, ok, err := s.Get(ctx, "job", "k")
			require.NoError(t, err)
			assert.False(t, ok)

			require.NoError(t, s.Set(ctx, "job", "k", []byte("v1")))
			v, ok, err := s.Get(ctx, "job", "k")
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, "v1", string(v))

			// Namespaces are isolated.
			_, ok, err = s.Get(ctx, "other", "k")
			require.NoError(t, err)
			assert.False(t, ok)

			// An empty value is present, not absent.
			require.NoError(t, s.Set(ctx, "job", "empty", nil))
			v, ok, err = s.Get(ctx, "job", "empty")
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Empty(t, v)

			require.NoError(t, s.Delete(ctx, "job", "k"))
			require.NoError(t, s.Delete(ctx, "job", "k"))
			require.NoError(t, s.Delete(ctx, "nobucket", "k"))
			_, ok, err = s.Get(ctx, "job", "k")
			require.NoError(t, err)
			assert.False(t, ok)

			require.NoError(t, s.Close())
			_, _, err = s.Get(ctx, "job", "k")
			assert.ErrorIs(t, err, ErrClosed)
		})
	}
}

func TestStore_Concurrent(t *testing.T) {
	ctx := context.Background()
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			s := open()
			defer s.Close()
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					for i := range 50 {
						k := fmt.Sprintf("%d-%d", g, i)
						assert.NoError(t, s.Set(ctx, "ns", k, []byte(k)))
						v, ok, err := s.Get(ctx, "ns", k)
						assert.NoError(t, err)
						assert.True(t, ok)
						assert.Equal(t, k, string(v))
					}
				})
			}
			wg.Wait()
		})
	}
}

func TestBolt_PersistsAndLocks(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := OpenBolt(path)
	require.NoError(t, err)
	require.NoError(t, s.Set(ctx, "job", "k", []byte("kept")))

	_, err = OpenBolt(path)
	assert.ErrorIs(t, err, ErrLocked, "a second opener must not hang or corrupt")

	require.NoError(t, s.Close())
	s, err = OpenBolt(path)
	require.NoError(t, err)
	defer s.Close()
	v, ok, err := s.Get(ctx, "job", "k")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "kept", string(v))
}

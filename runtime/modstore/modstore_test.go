package modstore

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStore_PutGet(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	wasm := []byte("\x00asm\x01\x00\x00\x00")
	d, err := s.Put(wasm)
	require.NoError(t, err)
	assert.Equal(t, Digest(wasm), d)
	d2, err := s.Put(wasm)
	require.NoError(t, err)
	assert.Equal(t, d, d2)
	assert.True(t, s.Has(d))

	got, err := s.Get(d)
	require.NoError(t, err)
	assert.Equal(t, wasm, got)

	p, _ := s.Path(d)
	require.NoError(t, os.WriteFile(p, []byte("tampered"), 0o644))
	_, err = s.Get(d)
	assert.ErrorContains(t, err, "corrupt")

	require.NoError(t, s.Delete(d))
	require.NoError(t, s.Delete(d))
	_, err = s.Get(d)
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestParseDigest(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"valid", Digest(nil), true},
		{"no prefix", Digest(nil)[len(Prefix):], false},
		{"short", "sha256:abcd", false},
		{"upper", "sha256:" + "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", false},
		{"path traversal", "sha256:../../../../etc/passwd" + string(make([]byte, 36)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseDigest(tc.in)
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, ErrBadDigest)
			}
		})
	}
}

package jsonbytes

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBytes_RoundTrip(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	b, err := json.Marshal(struct{ B Bytes }{all})
	require.NoError(t, err)
	var back struct{ B Bytes }
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, Bytes(all), back.B)
	assert.Equal(t, `[0,9,10,99,100,255]`, string(Append(nil, []byte{0, 9, 10, 99, 100, 255})))
}

func TestParse_Refuses(t *testing.T) {
	for _, in := range []string{``, `"AAE="`, `null`, `{}`, `[256]`, `[1.5]`, `[01]`, `[-1]`, `[1,]`, `[1] x`, `[1`} {
		_, err := Parse([]byte(in))
		assert.ErrorIs(t, err, ErrNotBytes, in)
	}
	got, err := Parse([]byte(" [ 1 , 2 ]\n"))
	require.NoError(t, err)
	assert.Equal(t, Bytes{1, 2}, got)
}

package event

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		kind     Kind
		bad      bool
	}{
		{"tangle warm-up", `{}`, KindWarm, false},
		{"ferry warm-up", `{"ferry":{"v":1,"warm":true}}`, KindWarm, false},
		{"ferry call", `{"ferry":{"v":1,"input":"aGk=","digest":"sha256:00"}}`, KindFerry, false},
		{"ferry empty input", `{"ferry":{"v":1}}`, KindFerry, false},
		{"tangle", `{"job_id":3,"args":[1,2,3]}`, KindTangle, false},
		{"tangle no args", `{"job_id":3}`, KindTangle, false},
		{"empty", ``, 0, true},
		{"array", `[1]`, 0, true},
		{"wrong version", `{"ferry":{"v":9}}`, 0, true},
		{"both", `{"ferry":{"v":1},"job_id":1}`, 0, true},
		{"unknown field", `{"job_id":1,"argz":[]}`, 0, true},
		{"base64 args", `{"job_id":1,"args":"AQI="}`, 0, true},
		{"trailing", `{"job_id":1}{}`, 0, true},
		{"neither", `{"ferry":null}`, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, kind, err := Parse([]byte(tc.in))
			if tc.bad {
				assert.ErrorIs(t, err, ErrBadRequest)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.kind, kind)
			assert.NotNil(t, r)
		})
	}
}

func TestClassOf(t *testing.T) {
	assert.Equal(t, ClassJob, ClassOf(string(TypeTrap)))
	assert.Equal(t, ClassTimeout, ClassOf("Sandbox.Timedout"))
	assert.Equal(t, ClassLimit, ClassOf("Function.ResponseSizeTooLarge"))
	assert.Equal(t, ClassNotFound, ClassOf(string(TypeNotDeployed)))
	for _, host := range []string{"Runtime.ExitError", string(TypeInit), string(TypeHost), "", "errorString"} {
		assert.Equal(t, ClassHost, ClassOf(host), host)
	}
}

// FuzzParse: Parse never panics, and what it accepts as Ferry's or
// Tangle's call survives a round trip.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{}`, `{"ferry":{"v":1,"input":"aGk="}}`, `{"job_id":1,"args":[0,255]}`, `{"ferry":{"v":1,"warm":true}}`, `{"job_id":4294967296}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, kind, err := Parse(in)
		if err != nil {
			return
		}
		if kind == KindWarm {
			return
		}
		b, err := json.Marshal(r)
		require.NoError(t, err)
		r2, kind2, err := Parse(b)
		require.NoError(t, err, "%s", b)
		assert.Equal(t, kind, kind2)
		b2, err := json.Marshal(r2)
		require.NoError(t, err)
		assert.JSONEq(t, string(b), string(b2))
	})
}

package policy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics; that what it accepts, Encode
// writes in a form Parse accepts again and encodes the same (the round trip
// is idempotent, so Ferry's writes never drift); that Clone and an empty
// Apply change nothing; and that what it refuses is ErrSyntax or ErrInvalid,
// at a place inside the file.
//
//	go test ./orchestrator/policy -run '^$' -fuzz FuzzParse -fuzztime 60s
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "fuzz-seed", "*"))
	if err != nil {
		f.Fatal(err)
	}
	if len(seeds) == 0 {
		f.Fatal("no seeds in testdata/fuzz-seed")
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		``,
		` `,
		`{}`,
		`null`,
		`[]`,
		`"x"`,
		`0`,
		`{"serverless":{}}`,
		`{"serverless":null,"ferry":{}}`,
		`{"serverless":{"provider":{"type":"custom","endpoint":"http://[::1]:8080"}}}`,
		`{"serverless":{"provider":{"type":"aws-lambda","region":"us-gov-west-1"},"default_memory_mb":32768,"default_timeout_secs":3600}}`,
		`{"ferry":{"providers":[{"type":"aws-lambda","region":"us-east-1","limits":{"payload_expansion":16,"timeout_ms":1}}]}}`,
		`{"ferry":{"latency_threshold_ms":5e-324,"cost_threshold_usd":-0}}`,
		`{"ferry":{"vm":{"hourly_usd":1000,"vcpus":1024,"utilisation":1}}}`,
		`{"serverless":{"":1,"enable":true,"x":{"":[]}}}`,
		`{"serverless":{"default_timeout_\u017fecs":10,"default_timeout_secs":20}}`,
		`{"serverless":{"Enable":true,"enable":false}}`,
		`{"a":1,"a":2,"serverless":{"enable":true},"serverless":{"enable":false}}`,
		`{"ferry":{"Providers":[{"TYPE":"custom","Endpoint":"https://a"}],"providers":[{"type":"aws-lambda","region":"us-east-1"}]}}`,
		`{"ferry":{"providers":[{"type":"aws-lambda","region":"us-east-1","price":{"meter":"cpu-ms","per_request_usd":1,"granularity_ms":60000}}]}}`,
		`{"x":"<&>\u2028"}`,
		"{\"serverless\":{\"enable\":true}}\n\n",
		"\xef\xbb\xbf{}",
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		p, err := Parse("fuzz.json", data)
		if !bytes.Equal(orig, data) {
			t.Fatal("Parse modified its input")
		}
		if err != nil {
			if p != nil {
				t.Fatal("Parse returned a policy and an error")
			}
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error is neither ErrSyntax nor ErrInvalid: %v", err)
			}
			errs := policyErrors(err)
			if len(errs) == 0 {
				t.Fatalf("error is no *Error: %v", err)
			}
			lines := bytes.Count(data, []byte("\n")) + 1
			for _, e := range errs {
				if e.File != "fuzz.json" {
					t.Fatalf("error names file %q: %v", e.File, e)
				}
				if e.Line < 0 || e.Line > lines || e.Col < 0 || (e.Line == 0) != (e.Col == 0) {
					t.Fatalf("position %d:%d outside a %d-line file: %v", e.Line, e.Col, lines, e)
				}
			}
			return
		}
		if p == nil {
			t.Fatal("Parse returned neither a policy nor an error")
		}
		first, err := p.Encode()
		if err != nil {
			t.Fatalf("Encode of a parsed policy: %v", err)
		}
		q, err := Parse("fuzz.json", first)
		if err != nil {
			t.Fatalf("Parse of Encode's output: %v\n%s", err, first)
		}
		second, err := q.Encode()
		if err != nil {
			t.Fatalf("second Encode: %v", err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("round trip is not idempotent:\nfirst:\n%s\nsecond:\n%s", first, second)
		}
		if c, err := p.Clone().Encode(); err != nil || !bytes.Equal(first, c) {
			t.Fatalf("Clone differs (%v):\n%s\nclone:\n%s", err, first, c)
		}
		r, changes, err := p.Apply(Update{})
		if err != nil || len(changes) != 0 {
			t.Fatalf("empty Apply: %v, %q", err, changes)
		}
		if a, err := r.Encode(); err != nil || !bytes.Equal(first, a) {
			t.Fatalf("empty Apply changed the policy (%v):\n%s\nafter:\n%s", err, first, a)
		}
		if v := p.View("fuzz.json", true); len(v.Providers) == 0 {
			t.Fatal("a valid policy has no provider")
		}
	})
}

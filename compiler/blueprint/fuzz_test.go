package blueprint_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ferryrun/ferry/compiler/blueprint"
)

// FuzzParse: Parse never panics; a nil error means a blueprint that passes
// Validate, has its jobs' names filled in and lists them sorted; a non-nil
// error comes with no blueprint and wraps one of the sentinels.
func FuzzParse(f *testing.F) {
	seeds := []string{
		string(canonical(f)),
		withJob(""),
		withJob("memory = 20000\ntimeout = 0\n"),
		withJob("memroy = 1\n"),
		withJob(`memory = "big"` + "\n"),
		withJob(`source = "../x"` + "\n"),
		withJob(`samples = ["/abs", "a/../../b"]` + "\n"),
		withJob(`allow_hosts = ["*", "a:0", "*.ok.com:443"]` + "\n"),
		withServerless(`providers = ["x"]` + "\ncost_threshold = nan\nlatency_threshold = 0\n"),
		withServerless(`regions = ["US", "us", "us"]` + "\n"),
		"[blueprint]\nname = \"bp\n",
		"[blueprint]\nname = \"bp\"\n[blueprint.jobs]\n",
		"[blueprint]\nname = \"bp\"\nname = \"x\"\n",
		"[[blueprint]]\nname = \"bp\"\n",
		"blueprint.jobs.\"a.b\" = { source = \"s\" }\nblueprint.name = \"Q\"\n",
		"",
		"\x00\xff",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	sentinels := []error{
		blueprint.ErrTooLarge, blueprint.ErrSyntax, blueprint.ErrUnknownKey, blueprint.ErrWrongType,
		blueprint.ErrInvalid, blueprint.ErrSourceNotFound, blueprint.ErrSampleNotFound, blueprint.ErrUnknownLanguage,
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := blueprint.Parse("fuzz.toml", data)
		if err != nil {
			if b != nil {
				t.Fatalf("error %v with a blueprint", err)
			}
			if !slices.ContainsFunc(sentinels, func(s error) bool { return errors.Is(err, s) }) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			for line := range strings.SplitSeq(err.Error(), "\n") {
				if !strings.HasPrefix(line, "fuzz.toml") {
					t.Fatalf("problem does not name the file: %q", line)
				}
			}
			return
		}
		if b == nil {
			t.Fatal("nil blueprint without an error")
		}
		if verr := b.Validate(); verr != nil {
			t.Fatalf("Parse accepted a blueprint Validate rejects: %v", verr)
		}
		names := b.JobNames()
		if len(names) == 0 || !slices.IsSorted(names) {
			t.Fatalf("job names %q", names)
		}
		for _, n := range names {
			if b.Jobs[n].Name != n {
				t.Fatalf("job %q has Name %q", n, b.Jobs[n].Name)
			}
		}
	})
}

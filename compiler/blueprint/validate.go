package blueprint

import (
	"errors"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var (
	blueprintNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	jobNameRE       = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)
	regionRE        = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	drivePathRE     = regexp.MustCompile(`^[A-Za-z]:`)
)

// Validate checks every rule of the schema that needs no file system (Load
// adds the file system checks). It returns nil or all problems joined with
// errors.Join, in file order, each a *FieldError naming the field path.
func (b *Blueprint) Validate() error {
	if b == nil {
		return &FieldError{Path: "blueprint", Msg: "missing"}
	}
	var errs []error
	add := func(path string, value any, format string, args ...any) {
		errs = append(errs, &FieldError{Path: path, Value: value, Msg: fmt.Sprintf(format, args...)})
	}

	switch {
	case b.Name == "":
		add("blueprint.name", nil, "required")
	case !blueprintNameRE.MatchString(b.Name):
		add("blueprint.name", b.Name, "must match [a-z0-9][a-z0-9-]{0,62} (lowercase letters, digits and '-', at most 63, not starting with '-')")
	}

	s := b.Serverless
	const sp = "blueprint.serverless"
	for i, p := range s.Providers {
		path := fmt.Sprintf("%s.providers[%d]", sp, i)
		switch {
		case !slices.Contains(Providers, p):
			add(path, p, "unknown provider; want one of %s", joinQuoted(Providers))
		case slices.Index(s.Providers, p) < i:
			add(path, p, "listed twice")
		}
	}
	if c := s.CostThreshold; c != nil {
		switch {
		case math.IsNaN(*c) || math.IsInf(*c, 0):
			add(sp+".cost_threshold", *c, "must be a finite number of dollars >= 0")
		case *c < 0:
			add(sp+".cost_threshold", *c, "must be >= 0 (dollars per execution)")
		}
	}
	if l := s.LatencyThreshold; l != nil && *l <= 0 {
		add(sp+".latency_threshold", *l, "must be > 0 ms")
	}
	for i, r := range s.Regions {
		path := fmt.Sprintf("%s.regions[%d]", sp, i)
		switch {
		case !regionRE.MatchString(r):
			add(path, r, "must match [a-z0-9][a-z0-9-]{0,62} (a provider's region name, such as us-east-1)")
		case slices.Index(s.Regions, r) < i:
			add(path, r, "listed twice")
		}
	}

	if len(b.Jobs) == 0 {
		add("blueprint.jobs", nil, "at least one job required ([blueprint.jobs.NAME] with a source)")
	}
	for _, name := range b.JobNames() {
		errs = append(errs, validateJob(name, b.Jobs[name])...)
	}
	return errors.Join(errs...)
}

func validateJob(name string, j Job) []error {
	var errs []error
	jp := "blueprint.jobs." + quoteKeyPart(name)
	add := func(field string, value any, format string, args ...any) {
		errs = append(errs, &FieldError{Path: jp + field, Value: value, Msg: fmt.Sprintf(format, args...)})
	}

	if !jobNameRE.MatchString(name) {
		add("", nil, "job name must match [a-z0-9_-]{1,64} (lowercase letters, digits, '_' and '-')")
	}
	if j.Source == "" {
		add(".source", nil, "required (a file or folder relative to the blueprint folder)")
	} else if msg := checkRelPath(j.Source); msg != "" {
		add(".source", j.Source, "%s", msg)
	}
	if j.Language != "" && !slices.Contains(Languages, j.Language) {
		add(".language", j.Language, "unknown language; want one of %s", joinQuoted(Languages))
	}
	if j.Shape != "" && !slices.Contains(Shapes, j.Shape) {
		add(".shape", j.Shape, "unknown shape; want one of %s", joinQuoted(Shapes))
	}
	for i, s := range j.Samples {
		if msg := checkRelPath(s); msg != "" {
			add(fmt.Sprintf(".samples[%d]", i), s, "%s", msg)
		}
	}
	if m := j.Memory; m != nil && (*m < MinMemoryMB || *m > MaxMemoryMB) {
		add(".memory", *m, "must be %d..%d MB", MinMemoryMB, MaxMemoryMB)
	}
	if t := j.Timeout; t != nil && (*t < MinTimeoutSeconds || *t > MaxTimeoutSeconds) {
		add(".timeout", *t, "must be %d..%d s", MinTimeoutSeconds, MaxTimeoutSeconds)
	}
	for i, h := range j.AllowHosts {
		if msg := checkAllowHost(h); msg != "" {
			add(fmt.Sprintf(".allow_hosts[%d]", i), h, "%s", msg)
		}
	}
	return errs
}

// checkRelPath returns what is wrong with p as a path inside the blueprint
// folder, or "". Paths use forward slashes on every system.
func checkRelPath(p string) string {
	switch {
	case p == "":
		return "must not be empty"
	case strings.ContainsRune(p, 0):
		return "must not contain a NUL byte"
	case strings.Contains(p, `\`):
		return "must use '/' as the separator, not '\\'"
	case strings.HasPrefix(p, "/") || drivePathRE.MatchString(p) || filepath.IsAbs(p):
		return "must be relative to the blueprint folder, not absolute"
	case !filepath.IsLocal(filepath.FromSlash(p)):
		return "must stay inside the blueprint folder (no escaping '..')"
	}
	return ""
}

// checkAllowHost returns what is wrong with an allow_hosts entry, or "". The
// rules are the runtime's (runtime/wasmrt): host, host:port or *.domain.
func checkAllowHost(h string) string {
	const want = "want host, host:port or *.domain"
	if h == "" || strings.ContainsAny(h, "/ \t\r\n@?#") {
		return want
	}
	host := h
	if hh, port, err := net.SplitHostPort(h); err == nil {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "port must be 1..65535; " + want
		}
		host = hh
	}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		if rest == "" || strings.Contains(rest, "*") {
			return "bad wildcard; " + want
		}
		host = rest
	} else if strings.Contains(host, "*") {
		return "a wildcard may only open the name (*.example.com)"
	}
	if host == "" || strings.Contains(host, ":") && net.ParseIP(host) == nil {
		return want
	}
	return ""
}

func joinQuoted[T ~string](vs []T) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = strconv.Quote(string(v))
	}
	return strings.Join(q, ", ")
}

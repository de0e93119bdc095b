// Package hosttest is the conformance suite every host runs: the same
// examples, the same failures, the same concurrency, against any
// implementation of host.Host. A host package's test calls Run with a
// function that gives it a fresh host.
package hosttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/runtime/modstore"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

// Options tunes the suite for a host.
type Options struct {
	// SkipGo skips the Go example (it needs the Go toolchain to build).
	SkipGo bool
	// Concurrency is the number of simultaneous invocations; default 64.
	Concurrency int
}

// Run runs the suite. newHost returns a host with nothing deployed; the
// suite removes what it deploys.
func Run(t *testing.T, newHost func(t *testing.T) host.Host, opts Options) {
	if opts.Concurrency == 0 {
		opts.Concurrency = 64
	}
	s := &suite{newHost: newHost, opts: opts}
	t.Run("Examples", s.examples)
	t.Run("JobErrors", s.jobErrors)
	t.Run("OversizedInput", s.oversizedInput)
	t.Run("Concurrent", s.concurrent)
	t.Run("Remove", s.remove)
	t.Run("Redeploy", s.redeploy)
	t.Run("BadModule", s.badModule)
}

type suite struct {
	newHost func(t *testing.T) host.Host
	opts    Options
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func wat(t *testing.T, name string) []byte {
	t.Helper()
	b, err := examples.WAT(name)
	require.NoError(t, err)
	return b
}

// deploy deploys a module under name and removes it when the test ends.
func deploy(t *testing.T, h host.Host, name string, wasm []byte, lim host.Limits) *host.Deployment {
	t.Helper()
	d, err := h.Deploy(ctx(t), host.Job{Name: name, Module: wasm, Digest: modstore.Digest(wasm), Limits: lim})
	require.NoError(t, err)
	require.NotNil(t, d)
	assert.Equal(t, name, d.Job)
	assert.Equal(t, modstore.Digest(wasm), d.Digest)
	assert.NotEmpty(t, d.Host)
	t.Cleanup(func() { _ = h.Remove(context.Background(), d) })
	return d
}

func (s *suite) examples(t *testing.T) {
	h := s.newHost(t)
	cases := []struct {
		name, job string
		wasm      func(t *testing.T) []byte
		in, out   string
		goJob     bool
	}{
		{name: "reactor", job: "echo", wasm: func(t *testing.T) []byte { return wat(t, "echo") }, in: "hello ferry", out: "hello ferry"},
		{name: "command", job: "cat", wasm: func(t *testing.T) []byte { return wat(t, "cat") }, in: "plain WASI", out: "plain WASI"},
		{name: "empty input", job: "echo-empty", wasm: func(t *testing.T) []byte { return wat(t, "echo") }, in: "", out: ""},
		{name: "go reactor", job: "square", goJob: true, in: "12345", out: "152399025", wasm: func(t *testing.T) []byte {
			b, err := examples.BuildGo(ctx(t), "incredible-squaring", examples.Reactor)
			require.NoError(t, err)
			return b
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.goJob && (s.opts.SkipGo || testing.Short()) {
				t.Skip("Go example skipped")
			}
			d := deploy(t, h, tc.job, tc.wasm(t), host.Limits{})
			for i := range 2 { // the second call is warm on hosts that keep instances
				res, err := h.Invoke(ctx(t), d, host.Request{Input: []byte(tc.in), InvocationID: fmt.Sprintf("conf-%s-%d", tc.job, i)})
				require.NoError(t, err)
				assert.Equal(t, tc.out, string(res.Output))
				assert.NotEmpty(t, res.Host)
				assert.Positive(t, res.Duration)
				assert.GreaterOrEqual(t, res.Billed, res.Duration-time.Millisecond)
				assert.Positive(t, res.MemoryUsedBytes)
			}
		})
	}
}

func (s *suite) jobErrors(t *testing.T) {
	h := s.newHost(t)
	cases := []struct {
		name   string
		module string
		lim    host.Limits
		kind   error
		in     string
	}{
		{"trap", "trap", host.Limits{}, host.ErrJob, ""},
		{"non-zero exit", "exit3", host.Limits{}, host.ErrJob, ""},
		{"guest error", "guesterror", host.Limits{}, host.ErrJob, "x"},
		{"timeout", "loop", host.Limits{Timeout: 200 * time.Millisecond}, host.ErrTimeout, ""},
		{"memory", "membomb", host.Limits{MemoryMB: 16}, host.ErrLimit, ""},
		{"output", "bigoutput", host.Limits{}, host.ErrLimit, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := deploy(t, h, tc.module, wat(t, tc.module), tc.lim)
			_, err := h.Invoke(ctx(t), d, host.Request{Input: []byte(tc.in)})
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.kind)
			assert.True(t, host.IsJobFault(err), "a job's failure must not look like a host's: %v", err)
			assert.False(t, errors.Is(err, host.ErrHost), "job error reported as host error: %v", err)
			assert.False(t, host.Retryable(err, true), "job faults are never retried: %v", err)
			// The host is still healthy: the same deployment serves again
			// (echoing modules aside, a second failing call fails the same way).
			_, err2 := h.Invoke(ctx(t), d, host.Request{Input: []byte(tc.in)})
			assert.ErrorIs(t, err2, tc.kind)
		})
	}
}

func (s *suite) oversizedInput(t *testing.T) {
	h := s.newHost(t)
	d := deploy(t, h, "echo-small", wat(t, "echo"), host.Limits{MaxInputBytes: 1024})
	_, err := h.Invoke(ctx(t), d, host.Request{Input: bytes.Repeat([]byte("x"), 2048)})
	require.Error(t, err)
	assert.ErrorIs(t, err, host.ErrLimit)
	res, err := h.Invoke(ctx(t), d, host.Request{Input: bytes.Repeat([]byte("y"), 1024)})
	require.NoError(t, err, "an input at the limit is accepted")
	assert.Len(t, res.Output, 1024)
}

func (s *suite) concurrent(t *testing.T) {
	h := s.newHost(t)
	d := deploy(t, h, "echo-conc", wat(t, "echo"), host.Limits{})
	n := s.opts.Concurrency
	var wg sync.WaitGroup
	errs := make([]error, n)
	outs := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := h.Invoke(ctx(t), d, host.Request{Input: fmt.Appendf(nil, "call %d", i)})
			if err != nil {
				errs[i] = err
				return
			}
			outs[i] = string(res.Output)
		}()
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i], "call %d", i)
		assert.Equal(t, fmt.Sprintf("call %d", i), outs[i], "each call gets its own output")
	}
}

func (s *suite) remove(t *testing.T) {
	h := s.newHost(t)
	wasm := wat(t, "echo")
	d, err := h.Deploy(ctx(t), host.Job{Name: "echo-rm", Module: wasm, Digest: modstore.Digest(wasm)})
	require.NoError(t, err)
	_, err = h.Invoke(ctx(t), d, host.Request{Input: []byte("before")})
	require.NoError(t, err)
	require.NoError(t, h.Remove(ctx(t), d))
	_, err = h.Invoke(ctx(t), d, host.Request{Input: []byte("after")})
	assert.ErrorIs(t, err, host.ErrNotFound)
	assert.False(t, host.IsJobFault(err))
	assert.ErrorIs(t, h.Remove(ctx(t), d), host.ErrNotFound, "a second remove finds nothing")
}

func (s *suite) redeploy(t *testing.T) {
	h := s.newHost(t)
	echo, cat := wat(t, "echo"), wat(t, "trap")
	d1 := deploy(t, h, "changing", echo, host.Limits{})
	again, err := h.Deploy(ctx(t), host.Job{Name: "changing", Module: echo, Digest: modstore.Digest(echo)})
	require.NoError(t, err)
	assert.Equal(t, d1.ID, again.ID, "the same module deploys to the same deployment")

	d2 := deploy(t, h, "changing", cat, host.Limits{})
	assert.NotEqual(t, d1.Digest, d2.Digest)
	_, err = h.Invoke(ctx(t), d2, host.Request{Input: []byte("x")})
	assert.ErrorIs(t, err, host.ErrJob, "the new module (trap) answers")
	_, err = h.Invoke(ctx(t), d1, host.Request{Input: []byte("x")})
	assert.ErrorIs(t, err, host.ErrNotFound, "the old deployment is gone")
}

func (s *suite) badModule(t *testing.T) {
	h := s.newHost(t)
	for _, tc := range []struct {
		name string
		wasm []byte
	}{
		{"not wasm", []byte("#!/bin/sh\necho native\n")},
		{"unknown ABI", wat(t, "abiv99")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.Deploy(ctx(t), host.Job{Name: "bad", Module: tc.wasm, Digest: modstore.Digest(tc.wasm)})
			require.Error(t, err)
			assert.False(t, host.IsJobFault(err), "a refused module is not a job's runtime failure: %v", err)
		})
	}
	wasm := wat(t, "echo")
	_, err := h.Deploy(ctx(t), host.Job{Name: "bad-digest", Module: wasm, Digest: "sha256:" + fmt.Sprintf("%064x", 0)})
	assert.Error(t, err, "a module that does not match its digest is refused")
}

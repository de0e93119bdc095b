// Package benchmarks holds Ferry's cross-cutting benchmarks, the ones that
// need whole binaries or several packages: process start with and without the
// compilation cache, for now. Per-package benchmarks live next to their code
// (runtime/wasmrt, runtime/engine). `make bench` runs all of them and writes
// benchstat-readable output to benchmarks/results/; RESULTS.md interprets it.
package benchmarks

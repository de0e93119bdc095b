#!/usr/bin/env bash
# make bench: first the harness (every engine and host side by side on the
# example jobs: regenerates RESULTS.md's generated section, plots/ and
# results/harness.{json,txt}); then every testing.B benchmark, written
# benchstat-readable to benchmarks/results/<date>.txt (and
# results/latest.txt), machine details at the top. BENCHTIME and COUNT
# tune the testing.B run; HARNESS_ONLY=1 stops after the harness.
set -euo pipefail
cd "$(dirname "$0")/.."
tags=""
if CGO_ENABLED=1 go list -tags wasmtime ./runtime/engine >/dev/null 2>&1 && command -v gcc >/dev/null; then
  tags="-tags wasmtime"
else
  echo "bench: no cgo/gcc: the harness runs without wasmtime"
fi
go run $tags ./benchmarks/cmd/bench -ferry bin/ferry -lambda-bootstrap "bin/ferry-lambda-linux-$(go env GOARCH)"
[ -n "${HARNESS_ONLY:-}" ] && exit 0
mkdir -p benchmarks/results
out="benchmarks/results/$(date -u +%Y-%m-%d).txt"
{
  echo "# date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "# commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "# go: $(go version)"
  echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | xargs) x $(nproc)"
  echo "# mem: $(free -g 2>/dev/null | awk '/Mem:/{print $2" GiB"}')"
  echo "# kernel: $(uname -sr)"
} > "$out"
bt=${BENCHTIME:-2s}
count=${COUNT:-3}
echo "running benchmarks (benchtime $bt, count $count); raw output: $out"
go test $tags -run NONE -bench . -benchtime "$bt" -count "$count" ./runtime/engine ./runtime/wasmbin/instrument | tee -a "$out"
go test -run NONE -bench . -benchtime "$bt" -count "$count" ./benchmarks/native | tee -a "$out"
go test -run NONE -bench '^Benchmark(Invoke|InvokeParallel|Instantiate|Compile|SHA256)$' -benchtime "$bt" -count "$count" ./runtime/wasmrt | tee -a "$out"
# Paced calls sleep between iterations (outside the timer): a fixed count.
go test -run NONE -bench '^BenchmarkInvokePaced$' -benchtime 300x -count "$count" ./runtime/wasmrt | tee -a "$out"
# Same Go code natively without assembly, for the wasm/native ratio of like for like.
go test -tags purego -run NONE -bench '^BenchmarkSHA256$/native' -benchtime "$bt" -count "$count" ./runtime/wasmrt | sed 's/BenchmarkSHA256\/native/BenchmarkSHA256\/native-purego/' | tee -a "$out"
go test -run NONE -bench '^BenchmarkProcessStart$' -benchtime 10x -count "$count" ./benchmarks | tee -a "$out"
# The analyser and the cost model (issue 4).
go test -run NONE -bench . -benchtime "$bt" -count "$count" ./orchestrator/plan ./orchestrator/cost ./orchestrator/policy | tee -a "$out"
# The HTTP host (issue 5): a real `ferry host serve` process on loopback, and
# the server in process (the one to profile with -cpuprofile).
go test -run NONE -bench '^BenchmarkHTTPHost$' -benchtime 5s -count "$count" ./benchmarks | tee -a "$out"
go test -run NONE -bench '^BenchmarkServer_Invoke$' -benchtime "$bt" -count "$count" ./hosts/httphost | tee -a "$out"
# The orchestrator (issue 6): a routing decision, hedging against injected
# tail latency, sync invokes through ferry serve's API.
go test -run NONE -bench '^BenchmarkDecide$' -benchtime "$bt" -count "$count" ./orchestrator/route | tee -a "$out"
go test -run NONE -bench '^BenchmarkHedging$' -benchtime 3000x -count "$count" ./orchestrator/route | tee -a "$out"
go test -run NONE -bench '^BenchmarkAPI_InvokeLocal$' -benchtime "$bt" -count "$count" ./orchestrator/service | tee -a "$out"
# Issue 6, second part: batching, state stores (a real redis-server), the
# durable queue, and ferry serve's footprint (RSS idle and at 1,000 calls/s).
go test -run NONE -bench '^BenchmarkBatching$' -benchtime 20000x -count "$count" ./orchestrator/route | tee -a "$out"
go test -run NONE -bench . -benchtime 2000x -count "$count" ./runtime/state ./orchestrator/queue | tee -a "$out"
go test -run NONE -bench '^BenchmarkServeFootprint$' -benchtime 1x -count 1 ./benchmarks | tee -a "$out"
# The Lambda host (issue 7), on the local Lambda running the real bootstrap:
# cold starts per engine, a warm call, the zip.
go test -run NONE -bench '^BenchmarkLambda(ColdStart|Zip)$' -benchtime 5x -count 1 ./benchmarks | tee -a "$out"
go test -run NONE -bench '^BenchmarkLambdaWarm$' -benchtime 1000x -count "$count" ./benchmarks | tee -a "$out"
cp "$out" benchmarks/results/latest.txt
echo "wrote $out (compare runs with: benchstat OLD NEW)"
